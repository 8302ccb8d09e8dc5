// A small command-line parser for hcctl's subcommands (no dependency beyond the standard
// library, so the error text and exit status are ours: one line, exit 2).
//
// Each leaf command declares a CommandSpec: positionals in order, then options. Accepted forms:
//   --name VALUE   --name=VALUE   -n VALUE   -nVALUE   --flag   -f   --  (ends options)
// A lone "-" is a positional (stdin/stdout). Options may come before, between or after the
// positionals. Unknown options, a missing value, a repeated option, a missing required
// positional or an extra positional throw UsageError naming the culprit.
#pragma once

#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace hcnode::cli {

struct OptionSpec {
  std::string long_name;   // without the dashes: "size"
  char short_name = 0;     // 0 = none
  std::string value_name;  // empty: a flag without a value; else shown in help ("SIZE")
  std::string help;
};

struct PositionalSpec {
  std::string name;  // shown in help: "POOL/NAME"
  std::string help;
  bool required = true;
};

struct CommandSpec {
  std::string path;  // "hcctl image clone"
  std::string summary;  // one line, shown in the parent's command list
  std::vector<PositionalSpec> positionals;
  std::vector<OptionSpec> options;
  std::string details;  // free text after the option list (examples, notes); may be empty
};

class ParsedArgs {
 public:
  // The i-th positional, or nullopt if an optional positional was not given.
  std::optional<std::string> positional(size_t i) const;
  bool flag(const std::string& long_name) const { return values_.count(long_name) != 0; }
  std::optional<std::string> value(const std::string& long_name) const;

 private:
  friend ParsedArgs parse_args(const CommandSpec& spec, std::span<const std::string> args);
  std::vector<std::string> positionals_;
  std::map<std::string, std::string> values_;  // flags map to ""
};

// Parses `args` (everything after the command's own words) against `spec`. "--help"/"-h" is
// NOT handled here: callers check wants_help() first.
ParsedArgs parse_args(const CommandSpec& spec, std::span<const std::string> args);

// True if args holds -h or --help before any "--".
bool wants_help(std::span<const std::string> args);

// The --help text of a leaf command: usage line, summary, arguments, options, details.
std::string help_text(const CommandSpec& spec);

}  // namespace hcnode::cli
