// hcctl image …: images of a pool — list, inspect, import/export, clone, flatten, resize, rm, du.
// (Snapshots and golden marks: snapshot_commands.cpp.)
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include <spdlog/fmt/fmt.h>

#include "base/size.hpp"
#include "cluster/cli/cli_error.hpp"
#include "cluster/cli/commands.hpp"
#include "cluster/cli/render.hpp"

namespace hcnode::cli {

namespace {

using Clock = std::chrono::steady_clock;

std::string elapsed_text(Clock::time_point start) {
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  return ms < 1000 ? fmt::format("{:.0f} ms", ms) : fmt::format("{:.1f} s", ms / 1000);
}

// Pool argument of ls/du: a pool name alone.
std::string pool_arg(const std::string& text) {
  if (auto ok = storage::validate_name(text, "pool name"); !ok) {
    throw UsageError(ok.error().context());
  }
  return text;
}

// ---- ls -----------------------------------------------------------------------------------
int cmd_ls(Context& ctx, const ParsedArgs& args) {
  const bool all = args.flag("all");
  std::vector<storage::ImageSummary> images;
  bool several = false;
  int status = kExitOk;
  if (auto pool = args.positional(0)) {
    images = value_or_throw(ctx.client().list(pool_arg(*pool), all));
  } else {
    several = true;
    for (const auto& name : value_or_throw(ctx.client().pool_names())) {
      auto part = ctx.client().list(name, all);
      if (!part) {
        // One pool down must not hide the others; the exit status still says something failed.
        std::fprintf(stderr, "hcctl: warning: pool %s: %s\n", name.c_str(),
                     part.error().message().c_str());
        status = kExitFailure;
        continue;
      }
      images.insert(images.end(), part->begin(), part->end());
    }
  }
  if (ctx.output == OutputFormat::kJson) {
    print_json(images);
  } else {
    print_text(render_images(images, several));
  }
  return status;
}

// ---- info ---------------------------------------------------------------------------------
int cmd_info(Context& ctx, const ParsedArgs& args) {
  auto info = value_or_throw(ctx.client().info(image_arg(args, 0, false)));
  if (ctx.output == OutputFormat::kJson) {
    print_json(info);
  } else {
    print_text(render_info(info));
  }
  return kExitOk;
}

// ---- du -----------------------------------------------------------------------------------
int cmd_du(Context& ctx, const ParsedArgs& args) {
  const std::string target = *args.positional(0);
  storage::DuReport report;
  if (target.find('/') != std::string::npos) {
    ImageRef ref = image_arg(args, 0, false);
    report = value_or_throw(ctx.client().du(ref.pool, ref.name));
  } else {
    report = value_or_throw(ctx.client().du(pool_arg(target), std::nullopt));
  }
  if (ctx.output == OutputFormat::kJson) {
    print_json(report);
  } else {
    print_text(render_du(report));
  }
  return kExitOk;
}

// Prints an image after a change: its info in JSON, else one confirmation line.
void report_image(Context& ctx, const storage::ImageInfo& info, const std::string& line) {
  if (ctx.output == OutputFormat::kJson) {
    print_json(info);
  } else {
    print_text(line + "\n");
  }
}

// Same, when the operation returned nothing: JSON output fetches the image's new state.
void report_change(Context& ctx, const ImageRef& image, const std::string& line) {
  if (ctx.output == OutputFormat::kJson) {
    print_json(value_or_throw(ctx.client().info(image)));
  } else {
    print_text(line + "\n");
  }
}

// ---- create -------------------------------------------------------------------------------
int cmd_create(Context& ctx, const ParsedArgs& args) {
  ImageRef image = image_arg(args, 0, false);
  const uint64_t size = size_option(args, "size");
  auto info = value_or_throw(ctx.client().create(image, size));
  report_image(ctx, info, fmt::format("created {} ({}, {})", image.to_string(),
                                      format_size(info.size), info.uri));
  return kExitOk;
}

// ---- import -------------------------------------------------------------------------------
int cmd_import(Context& ctx, const ParsedArgs& args) {
  ImportRequest req;
  req.source = *args.positional(0);
  req.image = image_arg(args, 1, false);
  if (auto f = args.value("format")) {
    if (*f == "raw") {
      req.source_format = storage::ImageFormat::kRaw;
    } else if (*f == "qcow2") {
      req.source_format = storage::ImageFormat::kQcow2;
    } else {
      throw UsageError(fmt::format("--format '{}': expected raw or qcow2", *f));
    }
  }
  if (req.source == "-") {
    if (req.source_format == storage::ImageFormat::kQcow2) {
      throw UsageError("--format qcow2 needs a file: standard input is imported as raw");
    }
    if (args.value("size")) {
      req.stream_size = size_option(args, "size");
    }
  } else if (args.value("size")) {
    throw UsageError("--size is only for standard input ('-'): a file's size is its own");
  }
  req.keep_qcow2 = args.flag("keep-qcow2");
  const auto start = Clock::now();
  storage::ImageInfo info;
  {
    ProgressRun progress(ctx, "import " + req.image.to_string(), ProgressUnit::kBytes);
    req.progress = progress.callback();
    auto result = ctx.client().import_image(req);
    progress.finish(result.has_value());
    info = value_or_throw(std::move(result));
  }
  std::string line = fmt::format("imported {} -> {} ({}, {}) in {}",
                                 req.source == "-" ? "stdin" : req.source, req.image.to_string(),
                                 format_size(info.size), blockdev::to_string(info.format),
                                 elapsed_text(start));
  if (args.flag("golden")) {
    value_or_throw(ctx.client().mark_golden(req.image));
    info = value_or_throw(ctx.client().info(req.image));
    line += "; marked golden";
  }
  report_image(ctx, info, line);
  return kExitOk;
}

// ---- export -------------------------------------------------------------------------------
int cmd_export(Context& ctx, const ParsedArgs& args) {
  ExportRequest req;
  req.image = image_arg(args, 0, false);
  req.destination = *args.positional(1);
  req.overwrite = args.flag("force");
  req.sparse = !args.flag("no-sparse");
  const auto start = Clock::now();
  {
    ProgressRun progress(ctx, "export " + req.image.to_string(), ProgressUnit::kBytes);
    req.progress = progress.callback();
    auto result = ctx.client().export_image(req);
    progress.finish(result.has_value());
    value_or_throw(std::move(result));
  }
  // Exporting to stdout: stdout is the image, so the confirmation goes to stderr.
  std::string line = fmt::format("exported {} -> {} in {}", req.image.to_string(),
                                 req.destination == "-" ? "stdout" : req.destination,
                                 elapsed_text(start));
  if (req.destination == "-") {
    if (ctx.progress != ProgressMode::kOff) {
      std::fprintf(stderr, "%s\n", line.c_str());
    }
  } else if (ctx.output == OutputFormat::kJson) {
    print_json({{"image", req.image.to_string()}, {"destination", req.destination}});
  } else {
    print_text(line + "\n");
  }
  return kExitOk;
}

// ---- clone --------------------------------------------------------------------------------
int cmd_clone(Context& ctx, const ParsedArgs& args) {
  ImageRef source = image_arg(args, 0, true);
  ImageRef target = image_arg(args, 1, false);
  const auto start = Clock::now();
  auto info = value_or_throw(ctx.client().clone(source, target));
  report_image(ctx, info, fmt::format("cloned {} -> {} ({}) in {}", source.to_string(),
                                      target.to_string(), info.uri, elapsed_text(start)));
  return kExitOk;
}

// ---- flatten ------------------------------------------------------------------------------
int cmd_flatten(Context& ctx, const ParsedArgs& args) {
  ImageRef image = image_arg(args, 0, false);
  const auto start = Clock::now();
  {
    ProgressRun progress(ctx, "flatten " + image.to_string(), ProgressUnit::kOpaque);
    auto result = ctx.client().flatten(image, progress.callback());
    progress.finish(result.has_value());
    value_or_throw(std::move(result));
  }
  report_change(ctx, image,
                fmt::format("flattened {} in {}: it no longer depends on a parent",
                            image.to_string(), elapsed_text(start)));
  return kExitOk;
}

// ---- resize -------------------------------------------------------------------------------
int cmd_resize(Context& ctx, const ParsedArgs& args) {
  ImageRef image = image_arg(args, 0, false);
  const uint64_t size = size_option(args, "size");
  {
    ProgressRun progress(ctx, "resize " + image.to_string(), ProgressUnit::kOpaque);
    auto result = ctx.client().resize(image, size, args.flag("allow-shrink"), progress.callback());
    progress.finish(result.has_value());
    value_or_throw(std::move(result));
  }
  report_change(ctx, image, fmt::format("resized {} to {}", image.to_string(), format_size(size)));
  return kExitOk;
}

// ---- rm -----------------------------------------------------------------------------------
int cmd_rm(Context& ctx, const ParsedArgs& args) {
  ImageRef image = image_arg(args, 0, false);
  const bool flatten_children = args.flag("flatten-children");
  {
    ProgressRun progress(ctx, "rm " + image.to_string(), ProgressUnit::kOpaque);
    auto result = ctx.client().remove(image, flatten_children, progress.callback());
    progress.finish(result.has_value());
    value_or_throw(std::move(result));
  }
  if (ctx.output == OutputFormat::kJson) {
    print_json({{"removed", image.to_string()}});
  } else {
    print_text(fmt::format("removed {}\n", image.to_string()));
  }
  return kExitOk;
}

// ---- purge --------------------------------------------------------------------------------
int cmd_purge(Context& ctx, const ParsedArgs& args) {
  const std::string pool = pool_arg(*args.positional(0));
  long long min_age = 600;
  if (auto text = args.value("min-age")) {
    char* end = nullptr;
    errno = 0;
    min_age = std::strtoll(text->c_str(), &end, 10);
    if (text->empty() || *end != '\0' || errno != 0 || min_age < 0) {
      throw UsageError("--min-age: expected a number of seconds (0 or more), got '" + *text + "'");
    }
  }
  auto removed = value_or_throw(ctx.client().purge(pool, std::chrono::seconds(min_age)));
  if (ctx.output == OutputFormat::kJson) {
    print_json({{"pool", pool}, {"removed", removed}});
  } else {
    std::string text;
    for (const auto& name : removed) text += fmt::format("removed {}/{}\n", pool, name);
    if (removed.empty()) text = "nothing to purge in " + pool + "\n";
    print_text(text);
  }
  return kExitOk;
}

}  // namespace

Command image_command() {
  Command group;
  group.spec.path = "hcctl image";
  group.spec.summary = "Images: golden images, copy-on-write clones, snapshots, import/export.";
  group.spec.details =
      "Images are named POOL/NAME (hcctl pool ls lists the pools). On RBD pools a clone is an\n"
      "RBD clone v2 of a snapshot; on Gluster and directory pools it is a qcow2 overlay whose\n"
      "backing file is the golden image.\n"
      "\n"
      "  hcctl image import linux.raw rbd/golden-linux --golden\n"
      "  hcctl image clone rbd/golden-linux rbd/vm1\n"
      "  hcctl image ls rbd -o json\n";
  group.children.push_back(leaf(
      {.path = "hcctl image ls",
       .summary = "List the images of a pool (all pools without POOL).",
       .positionals = {{"POOL", "a pool name (default: every configured pool)", false}},
       .options = {{"all", 0, "",
                    "also list what interrupted operations left (import temporaries, killed "
                    "clones), marked incomplete"}},
       .details = "JSON: an array of {pool, name, size, format, parent, golden, incomplete}\n"
                  "(incomplete: null, or why the image is not usable).\n"},
      cmd_ls));
  group.children.push_back(leaf(
      {.path = "hcctl image info",
       .summary = "Show an image: size, used, format, parent, children, snapshots, URI.",
       .positionals = {{"POOL/NAME", "the image", true}},
       .options = {},
       .details = "JSON keys: pool, name, pool_kind, uri, format, size, used, parent, children,\n"
                  "snapshots, golden, read_only, features, backing_chain, incomplete (sizes in\n"
                  "bytes; incomplete: null, or why the image is not usable: an interrupted clone).\n"},
      cmd_info));
  group.children.push_back(leaf(
      {.path = "hcctl image du",
       .summary = "Provisioned and used space of a pool's images (or one image).",
       .positionals = {{"POOL[/NAME]", "a pool, or one image of it", true}},
       .options = {},
       .details = ""},
      cmd_du));
  group.children.push_back(leaf(
      {.path = "hcctl image create",
       .summary = "Create an empty raw image (reads as zeroes).",
       .positionals = {{"POOL/NAME", "the new image", true}},
       .options = {{"size", 's', "SIZE", "virtual size: 10G, 512M, or bytes (multiple of 512)"}},
       .details = ""},
      cmd_create));
  group.children.push_back(leaf(
      {.path = "hcctl image import",
       .summary = "Import a local raw or qcow2 file (or stdin) as a new image.",
       .positionals = {{"FILE|-", "the source file; '-' reads raw bytes from stdin", true},
                       {"POOL/NAME", "the new image", true}},
       .options = {{"format", 'f', "FORMAT", "source format: raw or qcow2 (default: detect)"},
                   {"golden", 0, "", "mark the image golden once imported (ready to clone)"},
                   {"keep-qcow2", 0, "",
                    "file pools: store a qcow2 source as qcow2 instead of raw"},
                   {"size", 's', "SIZE", "stdin only: the number of bytes that will arrive"}},
       .details = "All-zero chunks are skipped (the image stays sparse). The image appears under\n"
                  "its name only once complete; Ctrl-C stops the import and removes it.\n"},
      cmd_import));
  group.children.push_back(leaf(
      {.path = "hcctl image export",
       .summary = "Write an image's virtual disk (raw) to a local file or stdout.",
       .positionals = {{"POOL/NAME", "the image", true},
                       {"FILE|-", "the destination file (must not exist); '-' = stdout", true}},
       .options = {{"force", 0, "", "overwrite an existing destination file"},
                   {"no-sparse", 0, "", "write zero chunks too (default: leave holes)"}},
       .details = ""},
      cmd_export));
  group.children.push_back(leaf(
      {.path = "hcctl image clone",
       .summary = "Create a copy-on-write clone of a golden image (or of a snapshot).",
       .positionals = {{"POOL/GOLDEN[@SNAP]",
                        "the source: a golden image (its 'golden' snapshot) or a snapshot", true},
                       {"POOL/NAME", "the new clone", true}},
       .options = {},
       .details = "RBD: a clone v2 (no snapshot protection); it may go to another RBD pool.\n"
                  "Gluster/dir: a qcow2 overlay NAME.qcow2 in the same pool as the golden image.\n"},
      cmd_clone));
  group.children.push_back(leaf(
      {.path = "hcctl image flatten",
       .summary = "Copy the parent's data into a clone and drop the parent link.",
       .positionals = {{"POOL/NAME", "the clone", true}},
       .options = {},
       .details = ""},
      cmd_flatten));
  group.children.push_back(leaf(
      {.path = "hcctl image resize",
       .summary = "Grow an image (shrink only with --allow-shrink).",
       .positionals = {{"POOL/NAME", "the image", true}},
       .options = {{"size", 's', "SIZE", "the new virtual size: 20G, 512M, or bytes"},
                   {"allow-shrink", 0, "", "allow a smaller size (data past it is lost)"}},
       .details = ""},
      cmd_resize));
  group.children.push_back(leaf(
      {.path = "hcctl image rm",
       .summary = "Remove an image and its snapshots (refused while clones depend on it).",
       .positionals = {{"POOL/NAME", "the image", true}},
       .options = {{"flatten-children", 0, "",
                    "flatten every clone that depends on the image first, then remove it"}},
       .details = ""},
      cmd_rm));
  group.children.push_back(leaf(
      {.path = "hcctl image purge",
       .summary = "Remove what interrupted operations left in a pool (ls --all shows it).",
       .positionals = {{"POOL", "the pool", true}},
       .options = {{"min-age", 0, "SECONDS",
                    "only leftovers at least this old (default 600: younger ones may be an "
                    "operation still running elsewhere)"}},
       .details = "Leftovers: import temporaries, clones killed half-way (RBD), qcow2 temporaries\n"
                  "of clones and flattens (file pools). Complete images are never touched.\n"},
      cmd_purge));
  group.children.push_back(snapshot_command());
  group.children.push_back(golden_command());
  return group;
}

}  // namespace hcnode::cli
