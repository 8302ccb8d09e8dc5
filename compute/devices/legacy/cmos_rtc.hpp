// CMOS RAM and MC146818 real-time clock (ports 0x70 index, 0x71 data).
//
// Enough for Linux: the time registers (BCD, 24-hour mode), status registers A–D with "update
// not in progress" and "RAM valid", and plain storage for the other CMOS bytes. Bit 7 of the
// index is the NMI mask and is ignored. Time comes from the host clock (UTC) at each read.
// (Reference: Motorola MC146818A datasheet, register table.)
#pragma once

#include <array>
#include <cstdint>
#include <ctime>
#include <functional>
#include <mutex>

#include "compute/devices/bus.hpp"

namespace hcnode::compute {

class CmosRtc final : public BusDevice {
 public:
  static constexpr uint64_t kBase = 0x70;
  using Clock = std::function<std::time_t()>;

  // clock: seconds since the epoch (injectable for tests).
  explicit CmosRtc(Clock clock = [] { return std::time(nullptr); });

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  uint8_t read_data();

  std::mutex mu_;
  Clock clock_;
  uint8_t index_ = 0;                 // guarded by mu_
  std::array<uint8_t, 128> ram_{};    // guarded by mu_
};

}  // namespace hcnode::compute
