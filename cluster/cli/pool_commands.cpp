// hcctl pool …: the configured storage pools.
#include "cluster/cli/cli_error.hpp"
#include "cluster/cli/commands.hpp"
#include "cluster/cli/render.hpp"

namespace hcnode::cli {

namespace {

int cmd_pool_ls(Context& ctx, const ParsedArgs&) {
  auto pools = value_or_throw(ctx.client().pools());
  if (ctx.output == OutputFormat::kJson) {
    print_json(pools);
  } else {
    print_text(render_pools(pools));
  }
  return kExitOk;
}

}  // namespace

Command pool_command() {
  Command group;
  group.spec.path = "hcctl pool";
  group.spec.summary = "Storage pools (RBD pools, Gluster volumes, local directories).";
  group.spec.details =
      "Pools come from the storage config (--config, $HCNODE_STORAGE_CONFIG or\n"
      "/etc/hcnode/storage.json) or, without one, from the dev cluster's environment\n"
      "(eval \"$(deploy/devcluster.sh env)\": pools 'rbd' and 'gluster').\n";
  group.children.push_back(leaf(
      {.path = "hcctl pool ls",
       .summary = "List the pools with their capacity; unreachable pools say why.",
       .positionals = {},
       .options = {},
       .details = "JSON: an array of {name, kind, location, space: {total, free}, reachable, error}.\n"},
      cmd_pool_ls));
  return group;
}

}  // namespace hcnode::cli
