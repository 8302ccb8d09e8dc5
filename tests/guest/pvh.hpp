// Xen PVH boot ABI as QEMU (and hcnode's VMM) implement it.
//
// Source: xen/include/public/arch-x86/hvm/start_info.h. At the PVH entry
// point the CPU is in 32-bit protected mode with paging off, flat 4 GiB
// segments, and %ebx holds the physical address of `HvmStartInfo`.
// Every pointer inside the structure is a guest physical address.
#pragma once

#include <cstddef>
#include <cstdint>

namespace probe::pvh {

// "xEn3" with the top bit of 'x' set (start_info.h: XEN_HVM_START_MAGIC_VALUE).
inline constexpr uint32_t kStartMagic = 0x336ec578;

// ELF note type that carries the 32-bit entry point (xen/include/public/elfnote.h).
inline constexpr uint32_t kElfNotePhys32Entry = 18;

// E820-style memory types used in HvmMemmapEntry::type (start_info.h).
inline constexpr uint32_t kMemmapRam = 1;

struct HvmStartInfo {
    uint32_t magic;          // kStartMagic
    uint32_t version;        // 0 or 1; memmap_* exist only from version 1 on
    uint32_t flags;          // SIF_* flags
    uint32_t nr_modules;     // entries at modlist_paddr
    uint64_t modlist_paddr;  // array of hvm_modlist_entry
    uint64_t cmdline_paddr;  // NUL-terminated ASCII command line, 0 if none
    uint64_t rsdp_paddr;     // ACPI RSDP, 0 if none
    uint64_t memmap_paddr;   // array of HvmMemmapEntry (version >= 1)
    uint32_t memmap_entries; // number of entries at memmap_paddr
    uint32_t reserved;
};
static_assert(sizeof(HvmStartInfo) == 56);
static_assert(offsetof(HvmStartInfo, cmdline_paddr) == 24);
static_assert(offsetof(HvmStartInfo, memmap_paddr) == 40);

struct HvmMemmapEntry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;  // kMemmapRam, ...
    uint32_t reserved;
};
static_assert(sizeof(HvmMemmapEntry) == 24);

}  // namespace probe::pvh
