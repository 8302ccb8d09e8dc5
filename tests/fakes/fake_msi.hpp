// Fakes for the MSI side of compute/devices/interrupts.hpp: MSI vectors that count triggers and
// remember their message, a controller that hands them out (and keeps a handle on each for
// assertions), and an ioeventfd registrar that records registrations instead of calling KVM.
// (Legacy lines: FakeIrqLine in fake_interrupts.hpp.)
//
// Thread-safe where the real ones are (trigger() from device workers): counters are atomic, the
// recorded lists take a mutex.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "compute/devices/interrupts.hpp"
#include "tests/fakes/fake_interrupts.hpp"

namespace hcnode::testing {

// What a FakeMsiVector saw; shared so the test keeps it after the vector moved into a table.
struct FakeMsiState {
  std::atomic<uint64_t> triggers{0};
  std::atomic<uint64_t> configures{0};
  std::mutex mu;
  std::optional<compute::MsiMessage> message;  // guarded by mu
  bool fail_configure = false;                 // guarded by mu

  std::optional<compute::MsiMessage> last_message() {
    std::lock_guard lock(mu);
    return message;
  }
};

class FakeMsiVector final : public compute::MsiVector {
 public:
  explicit FakeMsiVector(std::shared_ptr<FakeMsiState> state) : state_(std::move(state)) {}

  Status configure(const compute::MsiMessage& message) override {
    std::lock_guard lock(state_->mu);
    if (state_->fail_configure) {
      return fail(EINVAL, "fake: configure refused");
    }
    state_->message = message;
    state_->configures.fetch_add(1);
    return {};
  }
  Status trigger() override {
    state_->triggers.fetch_add(1);
    return {};
  }
  int irqfd() const override { return -1; }

 private:
  std::shared_ptr<FakeMsiState> state_;
};

class FakeMsiController final : public compute::InterruptController {
 public:
  Result<std::unique_ptr<compute::IrqLine>> legacy_line(uint32_t gsi) override {
    return std::make_unique<FakeIrqLine>(gsi, std::make_shared<FakeIrqLine::Counters>());
  }
  Result<std::unique_ptr<compute::MsiVector>> allocate_msi() override {
    std::lock_guard lock(mu_);
    auto state = std::make_shared<FakeMsiState>();
    vectors_.push_back(state);
    return std::make_unique<FakeMsiVector>(std::move(state));
  }

  // The i-th vector handed out (in allocation order).
  std::shared_ptr<FakeMsiState> vector(size_t i) {
    std::lock_guard lock(mu_);
    return i < vectors_.size() ? vectors_[i] : nullptr;
  }
  size_t allocated() {
    std::lock_guard lock(mu_);
    return vectors_.size();
  }

 private:
  std::mutex mu_;
  std::vector<std::shared_ptr<FakeMsiState>> vectors_;
};

class FakeIoEventRegistrar final : public compute::IoEventRegistrar {
 public:
  struct Registration {
    uint64_t addr;
    uint32_t len;
    int fd;
    bool operator==(const Registration&) const = default;
  };

  Status register_mmio_ioevent(uint64_t addr, uint32_t len, int fd) override {
    std::lock_guard lock(mu_);
    if (fail_) {
      return fail(ENOSPC, "fake: ioeventfd refused");
    }
    active_.push_back({addr, len, fd});
    return {};
  }
  Status unregister_mmio_ioevent(uint64_t addr, uint32_t len, int fd) override {
    std::lock_guard lock(mu_);
    std::erase(active_, Registration{addr, len, fd});
    return {};
  }

  std::vector<Registration> active() {
    std::lock_guard lock(mu_);
    return active_;
  }
  void set_fail(bool fail_registrations) {
    std::lock_guard lock(mu_);
    fail_ = fail_registrations;
  }

 private:
  std::mutex mu_;
  std::vector<Registration> active_;
  bool fail_ = false;
};

}  // namespace hcnode::testing
