// Debug-exit port (0xF4 by convention, as QEMU's isa-debug-exit): a guest ends the VM with a
// status byte by writing it to this port. Test guests use it where there is no i8042 or ACPI.
// The VMM reports the value in its exit status (compute/exit_status.hpp). Wired only with
// --debug-exit (VmConfig::debug_exit): no other guest may choose the VMM's exit status.
#pragma once

#include <cstdint>
#include <functional>

#include "compute/devices/bus.hpp"

namespace hcnode::compute {

class DebugExit final : public BusDevice {
 public:
  static constexpr uint64_t kPort = 0xF4;

  explicit DebugExit(std::function<void(uint8_t)> on_exit) : on_exit_(std::move(on_exit)) {}

  void read(uint64_t, std::span<uint8_t> data) override {
    for (auto& b : data) {
      b = 0;
    }
  }
  void write(uint64_t, std::span<const uint8_t> data) override {
    if (!data.empty() && on_exit_) {
      on_exit_(data[0]);  // wider writes: the low byte is the status
    }
  }

 private:
  std::function<void(uint8_t)> on_exit_;
};

}  // namespace hcnode::compute
