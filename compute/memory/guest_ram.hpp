// GuestRam: guest RAM as anonymous mmap regions, laid out for x86 with a 32-bit MMIO hole.
//
//   [0, min(size, kMmioHoleStart))                      RAM (low)
//   [kMmioHoleStart, 4 GiB)                             MMIO hole: PCI BARs, IOAPIC, LAPIC
//   [4 GiB, 4 GiB + size - low)                         RAM (high), when size > the hole start
//
// Each region becomes one KVM memslot. Owned by the Vm; shared read-only by every thread.
#pragma once

#include <cstdint>
#include <vector>

#include "base/mmap_region.hpp"
#include "compute/memory/guest_memory.hpp"

namespace hcnode::compute {

inline constexpr uint64_t kMmioHoleStart = 0xC000'0000;  // 3 GiB
inline constexpr uint64_t kMmioHoleEnd = 0x1'0000'0000;  // 4 GiB

struct RamRegion {
  uint64_t gpa;
  MmapRegion host;
};

class GuestRam final : public GuestMemory {
 public:
  // size must be a non-zero multiple of 4 KiB.
  static Result<GuestRam> create(uint64_t size);

  Result<std::span<uint8_t>> slice(uint64_t gpa, uint64_t len) const override;
  uint64_t ram_size() const override { return size_; }

  const std::vector<RamRegion>& regions() const { return regions_; }

 private:
  GuestRam(std::vector<RamRegion> regions, uint64_t size) : regions_(std::move(regions)), size_(size) {}
  std::vector<RamRegion> regions_;
  uint64_t size_;
};

}  // namespace hcnode::compute
