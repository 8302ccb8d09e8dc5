#include "cluster/cli/command.hpp"

#include <algorithm>
#include <cstdio>

#include <spdlog/fmt/fmt.h>

#include "cluster/cli/cli_error.hpp"

namespace hcnode::cli {

namespace {

const CommandSpec kGlobalSpec{
    .path = "hcctl",
    .summary = "",
    .positionals = {},
    .options = {},
    .details = "",
};

// Applies -o/--output, --config and --no-progress from a parse to the context.
void apply_globals(const CommandSpec& spec, const ParsedArgs& args, Context& ctx) {
  if (auto o = args.value("output")) {
    if (*o == "json") {
      ctx.output = OutputFormat::kJson;
    } else if (*o == "table") {
      ctx.output = OutputFormat::kTable;
    } else {
      throw UsageError(fmt::format("--output '{}': expected table or json (see '{} --help')", *o,
                                   spec.path));
    }
  }
  if (auto c = args.value("config")) {
    ctx.config_path = *c;
  }
  if (args.flag("no-progress")) {
    ctx.progress = ProgressMode::kOff;
  }
}

const Command* find_child(const Command& group, const std::string& name) {
  for (const auto& c : group.children) {
    if (c.spec.path.substr(c.spec.path.rfind(' ') + 1) == name) {
      return &c;
    }
  }
  return nullptr;
}

}  // namespace

ImageClient& Context::client() {
  if (!client_) {
    client_ = factory_(*this);
  }
  return *client_;
}

std::vector<OptionSpec> global_options() {
  return {
      {"output", 'o', "FORMAT", "table (default, for people) or json (stable keys, for scripts)"},
      {"config", 0, "FILE", "storage config file (see 'hcctl pool --help')"},
      {"no-progress", 0, "", "no progress bar or progress lines on stderr"},
  };
}

std::string group_help(const Command& group) {
  std::string text = fmt::format("usage: {} COMMAND [arguments] [options]\n\n{}\n\ncommands:\n",
                                 group.spec.path, group.spec.summary);
  size_t width = 0;
  for (const auto& c : group.children) {
    width = std::max(width, c.spec.path.size() - group.spec.path.size() - 1);
  }
  for (const auto& c : group.children) {
    text += fmt::format("  {:<{}}  {}\n", c.spec.path.substr(group.spec.path.size() + 1), width,
                        c.spec.summary);
  }
  text += "\nglobal options (accepted everywhere):\n";
  CommandSpec globals = kGlobalSpec;
  globals.options = global_options();
  globals.options.push_back({"help", 'h', "", "show help for hcctl or any (sub)command"});
  std::string options = help_text(globals);
  text += options.substr(options.find("options:\n") + 9);
  if (!group.spec.details.empty()) {
    text += "\n" + group.spec.details;
    if (text.back() != '\n') {
      text += '\n';
    }
  }
  text += fmt::format("\nRun '{} COMMAND --help' for the arguments of a command.\n",
                      group.spec.path);
  return text;
}

int dispatch(const Command& root, std::span<const std::string> args, Context& ctx) {
  const Command* node = &root;
  size_t i = 0;
  CommandSpec globals = kGlobalSpec;
  globals.options = global_options();
  while (!node->handler) {
    // Global options before the command word of this level.
    std::vector<std::string> leading;
    while (i < args.size() && args[i].starts_with("-") && args[i] != "-") {
      if (args[i] == "-h" || args[i] == "--help") {
        std::fputs(group_help(*node).c_str(), stdout);
        return kExitOk;
      }
      leading.push_back(args[i]);
      // Options with a value: take it too when it is a separate word.
      const bool has_value = (args[i] == "-o" || args[i] == "--output" || args[i] == "--config");
      if (has_value && i + 1 < args.size()) {
        leading.push_back(args[++i]);
      }
      ++i;
    }
    if (!leading.empty()) {
      globals.path = node->spec.path;
      apply_globals(globals, parse_args(globals, leading), ctx);
    }
    if (i >= args.size()) {
      if (node == &root) {
        throw UsageError(fmt::format("missing command (see '{} --help')", node->spec.path));
      }
      throw UsageError(fmt::format("missing command after '{}' (see '{} --help')",
                                   node->spec.path, node->spec.path));
    }
    const Command* child = find_child(*node, args[i]);
    if (child == nullptr) {
      throw UsageError(fmt::format("unknown command '{} {}' (see '{} --help')", node->spec.path,
                                   args[i], node->spec.path));
    }
    node = child;
    ++i;
  }
  auto rest = args.subspan(i);
  if (wants_help(rest)) {
    std::fputs(help_text(node->spec).c_str(), stdout);
    return kExitOk;
  }
  ParsedArgs parsed = parse_args(node->spec, rest);
  apply_globals(node->spec, parsed, ctx);
  return node->handler(ctx, parsed);
}

}  // namespace hcnode::cli
