// hcctl's command tree: groups ("image", "image snap") hold subcommands, leaves run a handler.
//
//   hcctl [global options] GROUP [SUBGROUP] COMMAND [arguments and options]
//
// Global options (-o/--output, --config, --no-progress) are accepted before the group and
// anywhere among a leaf's own arguments. "--help"/"-h" at any level prints that level's help
// on stdout and exits 0.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cluster/cli/args.hpp"
#include "cluster/cli/image_client.hpp"
#include "cluster/cli/progress.hpp"

namespace hcnode::cli {

enum class OutputFormat { kTable, kJson };

// What every command gets: output settings and the client (created on first use, so help and
// usage errors never connect to anything).
class Context {
 public:
  using ClientFactory = std::function<std::unique_ptr<ImageClient>(const Context&)>;
  explicit Context(ClientFactory factory) : factory_(std::move(factory)) {}

  OutputFormat output = OutputFormat::kTable;
  ProgressMode progress = ProgressMode::kAuto;
  std::optional<std::string> config_path;

  ImageClient& client();

 private:
  ClientFactory factory_;
  std::unique_ptr<ImageClient> client_;
};

using Handler = std::function<int(Context&, const ParsedArgs&)>;

struct Command {
  CommandSpec spec;  // for a group: path, summary, details (positionals/options unused)
  Handler handler;   // leaves only
  std::vector<Command> children;  // groups only
};

// The global options, as a leaf command accepts them.
std::vector<OptionSpec> global_options();

// Runs the command named by args (argv without argv[0]) in the tree under root. Returns the
// exit status; throws CliError for usage and operation errors.
int dispatch(const Command& root, std::span<const std::string> args, Context& ctx);

// The --help text of a group: usage, summary, its commands with their summaries.
std::string group_help(const Command& group);

}  // namespace hcnode::cli
