#include "compute/devices/legacy/i8042.hpp"

namespace hcnode::compute {
namespace {
constexpr uint8_t kStatusOutputFull = 0x01;
constexpr uint8_t kStatusSystemFlag = 0x04;  // set after a successful self-test
constexpr uint8_t kCmdReadCommandByte = 0x20;
constexpr uint8_t kCmdWriteCommandByte = 0x60;
constexpr uint8_t kCmdSelfTest = 0xAA;
constexpr uint8_t kCmdInterfaceTest = 0xAB;
constexpr uint8_t kCmdWriteOutputPort = 0xD1;
constexpr uint8_t kCmdPulseResetLine = 0xFE;
}  // namespace

void I8042::port_read(uint64_t port, std::span<uint8_t> data) {
  std::lock_guard lock(mu_);
  uint8_t value = 0;
  if (port == kCommandPort) {
    value = kStatusSystemFlag | (output_.empty() ? 0 : kStatusOutputFull);
  } else if (port == kDataPort && !output_.empty()) {
    value = output_.front();
    output_.pop_front();
  }
  for (auto& b : data) {
    b = value;
  }
}

void I8042::port_write(uint64_t port, std::span<const uint8_t> data) {
  if (data.empty()) {
    return;
  }
  const uint8_t value = data[0];
  bool reset = false;
  {
    std::lock_guard lock(mu_);
    if (port == kCommandPort) {
      pending_command_ = 0;
      switch (value) {
        case kCmdReadCommandByte:
          output_.push_back(command_byte_);
          break;
        case kCmdWriteCommandByte:
        case kCmdWriteOutputPort:
          pending_command_ = value;
          break;
        case kCmdSelfTest:
          output_.push_back(0x55);  // passed
          break;
        case kCmdInterfaceTest:
          output_.push_back(0x00);  // no error
          break;
        case kCmdPulseResetLine:
          reset = true;
          break;
        default:
          break;  // other commands (disable/enable ports, ...) need no answer
      }
    } else if (port == kDataPort) {
      if (pending_command_ == kCmdWriteCommandByte) {
        command_byte_ = value;
      } else if (pending_command_ == kCmdWriteOutputPort && (value & 0x01) == 0) {
        reset = true;  // output port bit 0 low = CPU reset asserted
      }
      // Bytes for the (absent) keyboard are dropped.
      pending_command_ = 0;
    }
  }
  if (reset && on_reset_) {
    on_reset_();
  }
}

}  // namespace hcnode::compute
