// Fake interrupt lines and vectors for device unit tests: they count what a device raised.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "compute/devices/interrupts.hpp"

namespace hcnode::testing {

class FakeIrqLine final : public compute::IrqLine {
 public:
  struct Counters {
    std::atomic<int> rising_edges{0};
    std::atomic<bool> level{false};
  };
  explicit FakeIrqLine(uint32_t gsi, std::shared_ptr<Counters> counters)
      : gsi_(gsi), counters_(std::move(counters)) {}
  uint32_t gsi() const override { return gsi_; }
  Status set_level(bool high) override {
    if (high && !counters_->level) {
      ++counters_->rising_edges;
    }
    counters_->level = high;
    return {};
  }

 private:
  uint32_t gsi_;
  std::shared_ptr<Counters> counters_;
};

}  // namespace hcnode::testing
