// BarAllocator: hands out naturally aligned address ranges for PCI BARs inside an MMIO window.
//
// hcnode places BARs itself, as firmware would, in the 32-bit MMIO hole (guest_ram.hpp):
// [0xC000_0000, 0xFEC0_0000) — below the IOAPIC (0xFEC0_0000), HPET and LAPIC (0xFEE0_0000)
// pages, which other devices own. A BAR must be aligned to its size (PCI Local Bus 3.0, 6.2.5.1:
// the low address bits are hard-wired to zero), so this is a bump allocator that rounds up.
// Allocating the largest BARs first wastes least space (attach_bars does).
//
// Pure code; not thread-safe (used while the VM is built and under the root's lock).
#pragma once

#include <cstdint>

#include "base/result.hpp"

namespace hcnode::compute::pci {

inline constexpr uint64_t kPciMmioWindowStart = 0xC000'0000;
inline constexpr uint64_t kPciMmioWindowEnd = 0xFEC0'0000;  // exclusive: IOAPIC starts here

class BarAllocator {
 public:
  BarAllocator(uint64_t start = kPciMmioWindowStart, uint64_t end = kPciMmioWindowEnd)
      : next_(start), end_(end) {}

  // Returns a size-aligned base for `size` bytes (a power of two). EINVAL for a bad size,
  // ENOSPC when the window is exhausted.
  Result<uint64_t> allocate(uint64_t size);

  uint64_t next_free() const { return next_; }

 private:
  uint64_t next_;
  uint64_t end_;
};

}  // namespace hcnode::compute::pci
