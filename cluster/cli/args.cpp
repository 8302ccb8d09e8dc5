#include "cluster/cli/args.hpp"

#include <spdlog/fmt/fmt.h>

#include "cluster/cli/cli_error.hpp"

namespace hcnode::cli {

namespace {

const OptionSpec* find_long(const CommandSpec& spec, const std::string& name) {
  for (const auto& o : spec.options) {
    if (o.long_name == name) {
      return &o;
    }
  }
  return nullptr;
}

const OptionSpec* find_short(const CommandSpec& spec, char c) {
  for (const auto& o : spec.options) {
    if (o.short_name != 0 && o.short_name == c) {
      return &o;
    }
  }
  return nullptr;
}

[[noreturn]] void usage(const CommandSpec& spec, const std::string& what) {
  throw UsageError(fmt::format("{} (see '{} --help')", what, spec.path));
}

std::string option_label(const OptionSpec& o) {
  std::string label = o.short_name != 0 ? fmt::format("-{}, --{}", o.short_name, o.long_name)
                                        : fmt::format("    --{}", o.long_name);
  if (!o.value_name.empty()) {
    label += " " + o.value_name;
  }
  return label;
}

}  // namespace

std::optional<std::string> ParsedArgs::positional(size_t i) const {
  if (i < positionals_.size()) {
    return positionals_[i];
  }
  return std::nullopt;
}

std::optional<std::string> ParsedArgs::value(const std::string& long_name) const {
  auto it = values_.find(long_name);
  if (it == values_.end()) {
    return std::nullopt;
  }
  return it->second;
}

bool wants_help(std::span<const std::string> args) {
  for (const auto& a : args) {
    if (a == "--") {
      return false;
    }
    if (a == "-h" || a == "--help") {
      return true;
    }
  }
  return false;
}

ParsedArgs parse_args(const CommandSpec& spec, std::span<const std::string> args) {
  ParsedArgs out;
  auto set = [&](const OptionSpec& o, std::string v) {
    if (!out.values_.emplace(o.long_name, std::move(v)).second) {
      usage(spec, fmt::format("option --{} given twice", o.long_name));
    }
  };
  bool options_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (options_done || a == "-" || a.empty() || a[0] != '-') {
      out.positionals_.push_back(a);
      continue;
    }
    if (a == "--") {
      options_done = true;
      continue;
    }
    const OptionSpec* o = nullptr;
    std::optional<std::string> inline_value;
    if (a.starts_with("--")) {
      std::string name = a.substr(2);
      if (auto eq = name.find('='); eq != std::string::npos) {
        inline_value = name.substr(eq + 1);
        name.resize(eq);
      }
      o = find_long(spec, name);
      if (o == nullptr) {
        usage(spec, fmt::format("unknown option '--{}'", name));
      }
    } else {
      o = find_short(spec, a[1]);
      if (o == nullptr) {
        usage(spec, fmt::format("unknown option '-{}'", a[1]));
      }
      if (a.size() > 2) {
        if (o->value_name.empty()) {
          usage(spec, fmt::format("option '-{}' takes no value (got '{}')", a[1], a));
        }
        inline_value = a.substr(2);
      }
    }
    if (o->value_name.empty()) {
      if (inline_value) {
        usage(spec, fmt::format("option --{} takes no value", o->long_name));
      }
      set(*o, "");
      continue;
    }
    if (inline_value) {
      set(*o, *inline_value);
      continue;
    }
    if (i + 1 >= args.size()) {
      usage(spec, fmt::format("option --{} needs a value ({})", o->long_name, o->value_name));
    }
    set(*o, args[++i]);
  }
  size_t required = 0;
  for (const auto& p : spec.positionals) {
    required += p.required ? 1 : 0;
  }
  if (out.positionals_.size() < required) {
    usage(spec, fmt::format("missing argument {}", spec.positionals[out.positionals_.size()].name));
  }
  if (out.positionals_.size() > spec.positionals.size()) {
    usage(spec, fmt::format("unexpected argument '{}'", out.positionals_[spec.positionals.size()]));
  }
  return out;
}

std::string help_text(const CommandSpec& spec) {
  std::string usage_line = "usage: " + spec.path;
  if (!spec.options.empty()) {
    usage_line += " [options]";
  }
  for (const auto& p : spec.positionals) {
    usage_line += p.required ? " " + p.name : " [" + p.name + "]";
  }
  std::string text = usage_line + "\n\n" + spec.summary + "\n";
  size_t width = 0;
  for (const auto& p : spec.positionals) {
    width = std::max(width, p.name.size());
  }
  for (const auto& o : spec.options) {
    width = std::max(width, option_label(o).size());
  }
  if (!spec.positionals.empty()) {
    text += "\narguments:\n";
    for (const auto& p : spec.positionals) {
      text += fmt::format("  {:<{}}  {}\n", p.name, width, p.help);
    }
  }
  if (!spec.options.empty()) {
    text += "\noptions:\n";
    for (const auto& o : spec.options) {
      text += fmt::format("  {:<{}}  {}\n", option_label(o), width, o.help);
    }
  }
  if (!spec.details.empty()) {
    text += "\n" + spec.details;
    if (text.back() != '\n') {
      text += '\n';
    }
  }
  return text;
}

}  // namespace hcnode::cli
