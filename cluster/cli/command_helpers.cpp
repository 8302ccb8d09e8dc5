// Shared pieces of hcctl's command handlers: leaf construction, argument checks, progress.
#include <spdlog/fmt/fmt.h>

#include "base/size.hpp"
#include "cluster/cli/cli_error.hpp"
#include "cluster/cli/commands.hpp"
#include "storage/image_ref.hpp"

namespace hcnode::cli {

Command leaf(CommandSpec spec, Handler handler) {
  for (auto& o : global_options()) {
    spec.options.push_back(std::move(o));
  }
  return Command{.spec = std::move(spec), .handler = std::move(handler), .children = {}};
}

ImageRef image_arg(const ParsedArgs& args, size_t index, bool allow_snapshot) {
  const std::string text = args.positional(index).value_or("");
  auto ref = storage::parse_image_ref(text, allow_snapshot);
  if (!ref) {
    throw UsageError(ref.error().context());
  }
  return *ref;
}

ImageRef snapshot_arg(const ParsedArgs& args, size_t index) {
  ImageRef ref = image_arg(args, index, true);
  if (!ref.snapshot) {
    throw UsageError(fmt::format("'{}' names no snapshot; expected POOL/NAME@SNAP",
                                 ref.to_string()));
  }
  return ref;
}

uint64_t size_option(const ParsedArgs& args, const std::string& option) {
  auto text = args.value(option);
  if (!text) {
    throw UsageError(fmt::format("missing --{} (e.g. --{} 20G)", option, option));
  }
  auto size = parse_size(*text);
  if (!size) {
    throw UsageError("--" + option + ": " + size.error().context());
  }
  if (auto ok = storage::validate_size(*size); !ok) {
    throw UsageError("--" + option + ": " + ok.error().context());
  }
  return *size;
}

ProgressCallback ProgressRun::callback() {
  return [this](uint64_t done, uint64_t total) {
    reporter_.update(done, total);
    return !InterruptScope::interrupted();
  };
}

}  // namespace hcnode::cli
