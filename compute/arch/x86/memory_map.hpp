// The guest's physical memory map as both boot paths report it (e820 in the zero page, the
// memmap of PVH's hvm_start_info): which ranges are RAM and which are reserved.
//
// It mirrors compute/memory/guest_ram.hpp:
//   [0, 0x9fc00)                  RAM (conventional memory, 639 KiB)
//   [0x9fc00, 1 MiB)              reserved (EBDA slot, VGA window, BIOS area with the MP table)
//   [1 MiB, min(size, 3 GiB))     RAM
//   [4 GiB, 4 GiB + size - 3 GiB) RAM, when size > 3 GiB
// The 3-4 GiB MMIO hole is left out on purpose: it is neither RAM nor reserved, and Linux takes
// the largest gap below 4 GiB as the window for PCI BARs (arch/x86/kernel/e820.c,
// e820__setup_pci_gap).
#pragma once

#include <cstdint>
#include <vector>

#include "base/result.hpp"

namespace hcnode::compute::x86 {

// e820 types; PVH's hvm_memmap_table_entry uses the same numbers (XEN_HVM_MEMMAP_TYPE_*).
enum class E820Type : uint32_t {
  kRam = 1,
  kReserved = 2,
};

struct E820Entry {
  uint64_t addr;
  uint64_t size;
  E820Type type;

  bool operator==(const E820Entry&) const = default;
};

// A range of guest-physical memory something occupies (a kernel segment, the initrd).
struct GuestRange {
  uint64_t addr;
  uint64_t size;

  bool operator==(const GuestRange&) const = default;
};

// The smallest guest we lay out: RAM has to reach past the 1 MiB kernel load address.
inline constexpr uint64_t kMinRamSize = 2ull << 20;

// The map for a guest with ram_size bytes of RAM (compute::GuestRam's layout), sorted by
// address. EINVAL when ram_size is below kMinRamSize or not a multiple of 4 KiB.
Result<std::vector<E820Entry>> build_memory_map(uint64_t ram_size);

// End of the RAM below the MMIO hole: min(ram_size, 3 GiB). Boot data that 32-bit code must
// reach (initrd, command line) lives below it.
uint64_t low_ram_end(uint64_t ram_size);

}  // namespace hcnode::compute::x86
