// PVH boot information: struct hvm_start_info and the arrays it points to, written into guest
// memory for a kernel entered at its XEN_ELFNOTE_PHYS32_ENTRY point with %ebx = its address.
//
// Layouts from xen/include/public/arch-x86/hvm/start_info.h (version 1). Every address inside
// is guest-physical and 64-bit little-endian; 0 means "not present". Linux needs version >= 1
// with a memmap when it does not run on Xen: without one it has no other way to learn its memory
// (arch/x86/platform/pvh/enlighten.c, init_pvh_bootparams).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "base/result.hpp"
#include "compute/arch/x86/boot_layout.hpp"
#include "compute/arch/x86/initrd.hpp"
#include "compute/arch/x86/memory_map.hpp"
#include "compute/memory/guest_memory.hpp"

namespace hcnode::compute::x86 {

// XEN_HVM_START_MAGIC_VALUE: "xEn3" with the 0x80 bit of the "E" set.
inline constexpr uint32_t kHvmStartMagic = 0x336ec578;
inline constexpr uint32_t kHvmStartInfoVersion = 1;

struct HvmStartInfo {
  uint32_t magic;           // kHvmStartMagic
  uint32_t version;         // 1: memmap_paddr/memmap_entries are valid
  uint32_t flags;           // SIF_xxx; 0 for an unprivileged, non-Xen guest
  uint32_t nr_modules;      // entries at modlist_paddr
  uint64_t modlist_paddr;   // HvmModlistEntry[nr_modules]
  uint64_t cmdline_paddr;   // NUL-terminated kernel command line
  uint64_t rsdp_paddr;      // ACPI RSDP; 0: none (Linux then uses the MP table)
  uint64_t memmap_paddr;    // HvmMemmapEntry[memmap_entries]
  uint32_t memmap_entries;
  uint32_t reserved;        // must be 0
};
static_assert(sizeof(HvmStartInfo) == 56);
static_assert(offsetof(HvmStartInfo, nr_modules) == 12);
static_assert(offsetof(HvmStartInfo, modlist_paddr) == 16);
static_assert(offsetof(HvmStartInfo, cmdline_paddr) == 24);
static_assert(offsetof(HvmStartInfo, rsdp_paddr) == 32);
static_assert(offsetof(HvmStartInfo, memmap_paddr) == 40);
static_assert(offsetof(HvmStartInfo, memmap_entries) == 48);

struct HvmModlistEntry {
  uint64_t paddr;          // module start
  uint64_t size;           // module size in bytes
  uint64_t cmdline_paddr;  // module's own command line; 0: none
  uint64_t reserved;
};
static_assert(sizeof(HvmModlistEntry) == 32);
static_assert(offsetof(HvmModlistEntry, cmdline_paddr) == 16);

struct HvmMemmapEntry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;  // XEN_HVM_MEMMAP_TYPE_*: the e820 numbers (E820Type)
  uint32_t reserved;
};
static_assert(sizeof(HvmMemmapEntry) == 24);
static_assert(offsetof(HvmMemmapEntry, type) == 16);

// The most entries that fit the PVH area (boot_layout.hpp).
inline constexpr uint64_t kPvhMaxMemmapEntries = (kPvhAreaEnd - kPvhMemmapAddr) / sizeof(HvmMemmapEntry);

// Writes hvm_start_info at kPvhStartInfoAddr with the memory map and, when given, the initrd as
// module 0 (Linux takes module 0 as its ramdisk). cmdline_paddr 0 means no command line.
// Returns the start_info address, which goes into %ebx.
Result<uint64_t> write_pvh_start_info(const GuestMemory& mem, uint64_t cmdline_paddr,
                                      const std::optional<InitrdPlacement>& initrd,
                                      std::span<const E820Entry> memory_map);

}  // namespace hcnode::compute::x86
