// Initial ramdisk placement, shared by both boot paths (PVH passes it as module 0 of
// hvm_start_info, the Linux boot protocol through ramdisk_image/ramdisk_size).
//
// Like a BIOS boot loader, the initrd goes as high as possible (boot.rst, "the initrd should
// typically be located as high in memory as possible"): below min(RAM top, 3 GiB, the kernel's
// limit), 4 KiB aligned, and above everything the kernel occupies while it boots.
#pragma once

#include <cstdint>
#include <span>

#include "base/result.hpp"
#include "compute/memory/guest_memory.hpp"

namespace hcnode::compute::x86 {

struct InitrdPlacement {
  uint64_t addr;
  uint64_t size;

  bool operator==(const InitrdPlacement&) const = default;
};

// Where an initrd of `size` bytes goes in a guest with `ram_size` bytes of RAM:
//   floor: the initrd must start at or above this (the end of the kernel's boot footprint);
//   limit: it must end at or below this (exclusive; initrd_addr_max + 1 for bzImage).
// ENOMEM "initrd (N MiB) does not fit ..." when there is no room. size must be non-zero.
Result<InitrdPlacement> place_initrd(uint64_t ram_size, uint64_t size, uint64_t floor, uint64_t limit);

// place_initrd on mem.ram_size(), then copies the initrd there.
Result<InitrdPlacement> load_initrd(const GuestMemory& mem, std::span<const uint8_t> initrd,
                                    uint64_t floor, uint64_t limit);

}  // namespace hcnode::compute::x86
