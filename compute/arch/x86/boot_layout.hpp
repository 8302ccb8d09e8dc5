// Fixed guest-physical addresses used while booting an x86 guest (both boot paths).
//
//   0x0000_0000  IVT + BIOS data area              left zero (no BIOS ran; Linux copes with 0s)
//   0x0000_1000  boot GDT (48 bytes)               kBootGdtAddr
//   0x0000_1080  boot TSS (104 bytes, all zero)    kBootTssAddr: TR must be valid for KVM
//   0x0000_6000  PVH hvm_start_info + modlist      kPvhStartInfoAddr .. (PVH only)
//                + memmap
//   0x0000_7000  zero page (struct boot_params)    kZeroPageAddr (bzImage only)
//   0x0000_8000  boot stack, top at 0x8ff0         kBootStackTop
//   0x0000_9000  PML4, PDPT, 4 PDs (to 0xefff)     kPml4Addr.. (64-bit boot only)
//   0x0002_0000  kernel command line (64 KiB)      kCmdlineAddr
//   0x0009_fc00  reserved to 1 MiB (EBDA, VGA, BIOS area)   e820 reserved
//   0x000f_0000  MP floating pointer + config table          kMpTableAddr
//   0x0010_0000  kernel (PVH ELF at its p_paddr, bzImage protected-mode code)
//   ...          initrd, as high as possible below min(RAM top, 3 GiB, initrd_addr_max)
//   0xc000_0000  MMIO hole (compute/memory/guest_ram.hpp) to 4 GiB, then the rest of RAM
//
// The boot tables sit in the first 64 KiB, which Linux keeps reserved (CONFIG_X86_RESERVE_LOW,
// default 64 KiB); the MP table sits in the e820-reserved range 0x9fc00-0x100000. The zero page
// and the command line are copied by the kernel before it allocates any memory (copy_bootdata),
// and its decompressor keeps clear of both. Nothing of ours overlaps the kernel, which loads at
// or above kKernelMinAddr.
#pragma once

#include <cstdint>

namespace hcnode::compute::x86 {

// Boot GDT: null, null, code (0x10), data (0x18), TSS (0x20, 16 bytes in long mode).
inline constexpr uint64_t kBootGdtAddr = 0x1000;
// A zeroed 32/64-bit TSS that TR points at: VM entry on Intel requires a usable busy TSS in TR
// (SDM Vol. 3 §28.3.1.2), and a zeroed one is harmless until the guest loads its own.
inline constexpr uint64_t kBootTssAddr = 0x1080;
inline constexpr uint32_t kBootTssLimit = 0x67;  // 104-byte TSS, no I/O bitmap

// PVH: struct hvm_start_info, then the module list, then the memory map (pvh.hpp).
inline constexpr uint64_t kPvhStartInfoAddr = 0x6000;
inline constexpr uint64_t kPvhModlistAddr = 0x6040;
inline constexpr uint64_t kPvhMemmapAddr = 0x6080;
inline constexpr uint64_t kPvhAreaEnd = 0x7000;

// Linux boot protocol: struct boot_params ("zero page", 4 KiB).
inline constexpr uint64_t kZeroPageAddr = 0x7000;

// Some boot stubs push before they load their own stack; give them a valid one (16-byte aligned).
inline constexpr uint64_t kBootStackTop = 0x8ff0;

// 64-bit boot: identity map of the first 4 GiB with 2 MiB pages (page_tables.hpp).
inline constexpr uint64_t kPml4Addr = 0x9000;
inline constexpr uint64_t kPdptAddr = 0xa000;
inline constexpr uint64_t kPdAddr = 0xb000;  // 4 consecutive page directories, one per GiB
inline constexpr uint64_t kPdCount = 4;

// Kernel command line, NUL-terminated. The kernel copies it early; it must stay below 4 GiB
// (cmd_line_ptr is 32 bits without ext_cmd_line_ptr).
inline constexpr uint64_t kCmdlineAddr = 0x20000;
inline constexpr uint64_t kCmdlineAreaSize = 0x10000;

// Conventional memory ends at 639 KiB; the last KiB (where an EBDA would be), the VGA window
// and the BIOS area up to 1 MiB are reported reserved in the e820 map.
inline constexpr uint64_t kEbdaStart = 0x9fc00;
inline constexpr uint64_t kHighMemStart = 0x100000;  // 1 MiB

// MP table in the BIOS area 0xf0000-0xfffff, one of the places Linux scans for "_MP_"
// (arch/x86/kernel/mpparse.c, MPS 1.4 §4: "in the BIOS ROM address space between 0F0000h and
// 0FFFFFh"). 64 KiB holds the table for the maximum of 254 vCPUs (~5 KiB).
inline constexpr uint64_t kMpTableAddr = 0xf0000;
inline constexpr uint64_t kMpTableAreaSize = 0x10000;

// Kernels load at or above 1 MiB: the boot protocol's default protected-mode load address
// (boot.rst, "LOADING THE REST OF THE KERNEL": "loaded at address 0x100000"), and where the
// probe guest links itself.
inline constexpr uint64_t kKernelMinAddr = kHighMemStart;

}  // namespace hcnode::compute::x86
