// hcctl image snap … and hcctl image golden …
#include <cstdio>

#include <spdlog/fmt/fmt.h>

#include "cluster/cli/cli_error.hpp"
#include "cluster/cli/commands.hpp"
#include "cluster/cli/render.hpp"

namespace hcnode::cli {

namespace {

ImageRef without_snapshot(ImageRef ref) {
  ref.snapshot.reset();
  return ref;
}

int cmd_snap_create(Context& ctx, const ParsedArgs& args) {
  ImageRef ref = snapshot_arg(args, 0);
  auto snap = value_or_throw(ctx.client().snapshot_create(without_snapshot(ref), *ref.snapshot));
  if (ctx.output == OutputFormat::kJson) {
    print_json(snap);
  } else {
    print_text(fmt::format("created snapshot {}\n", ref.to_string()));
  }
  return kExitOk;
}

int cmd_snap_ls(Context& ctx, const ParsedArgs& args) {
  auto snaps = value_or_throw(ctx.client().snapshot_list(image_arg(args, 0, false)));
  if (ctx.output == OutputFormat::kJson) {
    print_json(snaps);
  } else {
    print_text(render_snapshots(snaps));
  }
  return kExitOk;
}

int cmd_snap_rm(Context& ctx, const ParsedArgs& args) {
  ImageRef ref = snapshot_arg(args, 0);
  value_or_throw(ctx.client().snapshot_remove(without_snapshot(ref), *ref.snapshot));
  if (ctx.output == OutputFormat::kJson) {
    print_json({{"removed", ref.to_string()}});
  } else {
    print_text(fmt::format("removed snapshot {}\n", ref.to_string()));
  }
  return kExitOk;
}

int cmd_snap_rollback(Context& ctx, const ParsedArgs& args) {
  ImageRef ref = snapshot_arg(args, 0);
  ImageRef image = without_snapshot(ref);
  {
    ProgressRun progress(ctx, "rollback " + ref.to_string(), ProgressUnit::kOpaque);
    auto result = ctx.client().snapshot_rollback(image, *ref.snapshot, progress.callback());
    progress.finish(result.has_value());
    value_or_throw(std::move(result));
  }
  if (ctx.output == OutputFormat::kJson) {
    print_json(value_or_throw(ctx.client().info(image)));
  } else {
    print_text(fmt::format("rolled {} back to snapshot {}\n", image.to_string(), *ref.snapshot));
  }
  return kExitOk;
}

int cmd_golden_mark(Context& ctx, const ParsedArgs& args) {
  ImageRef image = image_arg(args, 0, false);
  value_or_throw(ctx.client().mark_golden(image));
  auto info = value_or_throw(ctx.client().info(image));
  if (ctx.output == OutputFormat::kJson) {
    print_json(info);
  } else if (info.pool_kind == storage::PoolKind::kRbd) {
    print_text(fmt::format("marked {} golden: clones use {}@golden\n", image.to_string(),
                           image.to_string()));
  } else {
    print_text(fmt::format("marked {} golden (read-only): clones are qcow2 overlays on it\n",
                           image.to_string()));
  }
  return kExitOk;
}

int cmd_golden_unmark(Context& ctx, const ParsedArgs& args) {
  ImageRef image = image_arg(args, 0, false);
  auto before = value_or_throw(ctx.client().info(image));
  value_or_throw(ctx.client().unmark_golden(image));
  if (before.pool_kind != storage::PoolKind::kRbd && !before.children.empty()) {
    // The file is writable again while overlays still read through it.
    std::fprintf(stderr,
                 "hcctl: warning: %zu clone(s) use %s as their backing file; writing to it now "
                 "corrupts them (flatten or remove them first)\n",
                 before.children.size(), image.to_string().c_str());
  }
  if (ctx.output == OutputFormat::kJson) {
    print_json(value_or_throw(ctx.client().info(image)));
  } else {
    print_text(fmt::format("unmarked {}: no longer golden\n", image.to_string()));
  }
  return kExitOk;
}

}  // namespace

Command snapshot_command() {
  Command group;
  group.spec.path = "hcctl image snap";
  group.spec.summary = "Snapshots of RBD images (create, list, remove, roll back).";
  group.children.push_back(leaf({.path = "hcctl image snap create",
                                 .summary = "Take a snapshot.",
                                 .positionals = {{"POOL/NAME@SNAP", "image and snapshot name", true}},
                                 .options = {},
                                 .details = ""},
                                cmd_snap_create));
  group.children.push_back(leaf({.path = "hcctl image snap ls",
                                 .summary = "List an image's snapshots with their clones.",
                                 .positionals = {{"POOL/NAME", "the image", true}},
                                 .options = {},
                                 .details = "JSON: an array of {name, id, size, created, children}.\n"},
                                cmd_snap_ls));
  group.children.push_back(leaf(
      {.path = "hcctl image snap rm",
       .summary = "Remove a snapshot (refused while clones of it exist).",
       .positionals = {{"POOL/NAME@SNAP", "the snapshot", true}},
       .options = {},
       .details = ""},
      cmd_snap_rm));
  group.children.push_back(leaf(
      {.path = "hcctl image snap rollback",
       .summary = "Roll an image back to a snapshot (the image must not be in use).",
       .positionals = {{"POOL/NAME@SNAP", "the snapshot", true}},
       .options = {},
       .details = ""},
      cmd_snap_rollback));
  return group;
}

Command golden_command() {
  Command group;
  group.spec.path = "hcctl image golden";
  group.spec.summary = "Mark or unmark golden images (the sources of clones).";
  group.spec.details =
      "RBD: marking takes the snapshot 'golden' that clones are made from; later writes to the\n"
      "image do not reach clones. Gluster/dir: the file becomes read-only.\n";
  group.children.push_back(leaf({.path = "hcctl image golden mark",
                                 .summary = "Mark an image golden (ready to clone).",
                                 .positionals = {{"POOL/NAME", "the image", true}},
                                 .options = {},
                                 .details = ""},
                                cmd_golden_mark));
  group.children.push_back(leaf(
      {.path = "hcctl image golden unmark",
       .summary = "Remove the golden mark (existing clones keep working).",
       .positionals = {{"POOL/NAME", "the image", true}},
       .options = {},
       .details = ""},
      cmd_golden_unmark));
  return group;
}

}  // namespace hcnode::cli
