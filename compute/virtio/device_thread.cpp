#include "compute/virtio/device_thread.hpp"

#include <spdlog/spdlog.h>

#include "base/thread.hpp"

namespace hcnode::compute::virtio {

std::jthread spawn_device_thread(const std::string& name, EventLoop& loop,
                                 std::shared_ptr<VirtioInterrupt> interrupt) {
  ThreadOptions options;
  options.on_failure = [interrupt](const std::string&) { interrupt->set_needs_reset(); };
  return spawn_named_thread(
      name,
      [&loop, interrupt, name](std::stop_token) {
        if (Status ran = loop.run(); !ran) {
          spdlog::error("{}: event loop failed: {}", name, ran.error().message());
          interrupt->set_needs_reset();
        }
      },
      std::move(options));
}

}  // namespace hcnode::compute::virtio
