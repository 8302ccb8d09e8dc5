// The command groups of hcctl and the helpers their handlers share.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "cluster/cli/command.hpp"
#include "cluster/cli/interrupt.hpp"
#include "cluster/cli/progress.hpp"

namespace hcnode::cli {

// hcctl pool …
Command pool_command();
// hcctl image … (includes the snap and golden groups)
Command image_command();
// hcctl image snap … / hcctl image golden …
Command snapshot_command();
Command golden_command();

// A leaf: spec plus the global options, and its handler.
Command leaf(CommandSpec spec, Handler handler);

// The image named by positional `index`: "POOL/NAME", or "POOL/NAME@SNAP" where allowed.
// Throws UsageError naming the argument.
ImageRef image_arg(const ParsedArgs& args, size_t index, bool allow_snapshot);
// Like image_arg, but the snapshot part is required ("POOL/NAME@SNAP").
ImageRef snapshot_arg(const ParsedArgs& args, size_t index);
// A size option ("20G", "512M", bytes): parsed and checked (> 0, multiple of 512).
uint64_t size_option(const ParsedArgs& args, const std::string& option);

// Progress on stderr plus Ctrl-C handling for one long operation.
class ProgressRun {
 public:
  // unit: kBytes for copies (import, export); kOpaque where librbd reports objects (flatten,
  // resize, rollback, rm).
  ProgressRun(const Context& ctx, std::string label, ProgressUnit unit)
      : reporter_(std::move(label), ctx.progress, unit) {}
  // The callback to hand to the client: reports, and returns false once Ctrl-C was pressed.
  ProgressCallback callback();
  void finish(bool success) { reporter_.finish(success); }

 private:
  ProgressReporter reporter_;
  InterruptScope interrupt_;
};

}  // namespace hcnode::cli
