// i8042 keyboard controller, only as far as a VM needs it: the CPU reset line.
//
// Linux's `reboot=k` (and the probe guest) ends the machine by writing command 0xFE ("pulse
// output port bit 0", the reset line) to port 0x64. Linux also probes the controller at boot
// (self-test 0xAA, command byte 0x20/0x60); those get plausible answers and no keyboard or
// mouse is ever reported. Ports: 0x60 data, 0x64 status (read) / command (write).
//
// Thread-safety: vCPU threads; one mutex.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>

#include "compute/devices/bus.hpp"

namespace hcnode::compute {

class I8042 final : public BusDevice {
 public:
  // Inserted on the PIO bus at [0x60, 0x65): offset 0 is the data port 0x60, offset 4 the
  // status/command port 0x64. (0x61, the PC speaker port, is claimed by KVM's in-kernel PIT
  // and never reaches us; 0x62/0x63 are unused.)
  static constexpr uint64_t kBase = 0x60;
  static constexpr uint64_t kLength = 5;
  static constexpr uint64_t kDataPort = 0;
  static constexpr uint64_t kCommandPort = 4;

  // on_reset runs on the vCPU thread that wrote the reset command.
  explicit I8042(std::function<void()> on_reset) : on_reset_(std::move(on_reset)) {}

  void read(uint64_t offset, std::span<uint8_t> data) override { port_read(offset, data); }
  void write(uint64_t offset, std::span<const uint8_t> data) override { port_write(offset, data); }

 private:
  void port_read(uint64_t port, std::span<uint8_t> data);
  void port_write(uint64_t port, std::span<const uint8_t> data);

  std::mutex mu_;
  std::function<void()> on_reset_;
  std::deque<uint8_t> output_;     // guarded by mu_: bytes waiting at port 0x60
  uint8_t command_byte_ = 0x30;    // keyboard and mouse clocks disabled, no interrupts
  uint8_t pending_command_ = 0;    // a command waiting for its data byte at 0x60
};

}  // namespace hcnode::compute
