// FakeGuestMemory: guest RAM for unit tests and fuzzers — one zeroed buffer at a chosen guest
// base address. Everything outside [base, base + size) is "not RAM" (EFAULT), like the MMIO
// hole or the end of real guest memory.
#pragma once

#include <cstdint>
#include <vector>

#include "compute/memory/guest_memory.hpp"

namespace hcnode::testing {

class FakeGuestMemory final : public compute::GuestMemory {
 public:
  explicit FakeGuestMemory(uint64_t size, uint64_t base = 0) : base_(base), bytes_(size) {}

  Result<std::span<uint8_t>> slice(uint64_t gpa, uint64_t len) const override {
    if (!range_inside(gpa, len, base_, bytes_.size())) {
      return fail(EFAULT, "fake guest memory: range outside RAM");
    }
    return std::span<uint8_t>(const_cast<uint8_t*>(bytes_.data()) + (gpa - base_), len);
  }
  uint64_t ram_size() const override { return bytes_.size(); }

  uint64_t base() const { return base_; }
  uint8_t* host(uint64_t gpa) { return bytes_.data() + (gpa - base_); }

 private:
  uint64_t base_;
  std::vector<uint8_t> bytes_;
};

}  // namespace hcnode::testing
