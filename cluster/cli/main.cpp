// hcctl: the operator's CLI. Commands (cluster/cli/*_commands.cpp) work against an ImageClient;
// today that is LocalImageClient (the storage library in-process), later the agent's REST API.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "cluster/cli/cli_error.hpp"
#include "cluster/cli/commands.hpp"
#include "cluster/cli/local_image_client.hpp"

using namespace hcnode::cli;

namespace {

// hcctl itself: every group below it.
Command root_command() {
  Command root;
  root.spec.path = "hcctl";
  root.spec.summary =
      "hcctl: operate an hcnode cluster. Today: images and pools, through the storage library\n"
      "on this machine (ceph.conf/keyring and the Gluster host from the storage config).";
  root.spec.details =
      "Output: tables for people; '-o json' for scripts (stable keys, sizes in bytes).\n"
      "Exit status: 0 ok, 1 the operation failed, 2 usage error, 130 interrupted (Ctrl-C).\n"
      "Errors are one line on stderr: 'hcctl: <reason>'.\n";
  root.children.push_back(image_command());
  root.children.push_back(pool_command());
  return root;
}

}  // namespace

int main(int argc, char** argv) {
  // Library chatter (storage, blockdev) would break the one-line error contract: warnings and
  // up only, and those go to stderr before the error line.
  spdlog::set_level(spdlog::level::err);
  std::vector<std::string> args(argv + 1, argv + argc);
  Context ctx([](const Context& c) -> std::unique_ptr<ImageClient> {
    return std::make_unique<LocalImageClient>(c.config_path);
  });
  try {
    const int status = dispatch(root_command(), args, ctx);
    if (std::fflush(stdout) != 0) {
      std::fprintf(stderr, "hcctl: writing the output failed\n");
      return kExitFailure;
    }
    return status;
  } catch (const CliError& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "hcctl: %s\n", e.what());
    return e.exit_status();
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "hcctl: internal error: %s\n", e.what());
    return kExitFailure;
  }
}
