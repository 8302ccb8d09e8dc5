// The boot GDT and the segment state that goes with it, for both boot paths.
//
// One table, written at kBootGdtAddr:
//   0x00 null, 0x08 null,
//   0x10 code  (__BOOT_CS of boot.rst "64-bit BOOT PROTOCOL"; 32-bit for PVH, 64-bit for Linux)
//   0x18 data  (__BOOT_DS: flat 4 GiB read/write)
//   0x20 TSS   (busy, base kBootTssAddr, limit 0x67; 16 bytes in long mode)
// Both protocols only require flat segments with these properties (PVH: "the selector value
// is unspecified"); the kernel loads its own GDT right away. The descriptors in memory are
// encoded from the same kvm_segment values the vCPU's hidden segment state is set to, so a
// guest that reloads a selector from this GDT gets exactly what it already had.
#pragma once

#include <linux/kvm.h>

#include <cstdint>

#include "base/result.hpp"
#include "compute/memory/guest_memory.hpp"

namespace hcnode::compute::x86 {

enum class BootMode {
  kProtected32,  // PVH: 32-bit protected mode, paging off
  kLong64,       // Linux 64-bit boot protocol: long mode, paging on
};

inline constexpr uint16_t kBootCsSelector = 0x10;
inline constexpr uint16_t kBootDsSelector = 0x18;
inline constexpr uint16_t kBootTssSelector = 0x20;
inline constexpr uint16_t kBootGdtLimit = 6 * 8 - 1;  // 4 descriptors + a 16-byte TSS slot

// Segment types (SDM Vol. 3 §3.4.5.1, Table 3-1 and §3.5, Table 3-2).
inline constexpr uint8_t kSegTypeDataRwAccessed = 0x3;
inline constexpr uint8_t kSegTypeCodeExecReadAccessed = 0xb;
inline constexpr uint8_t kSegTypeTssBusy = 0xb;  // 32-bit busy TSS; in IA-32e mode 64-bit busy TSS

struct BootSegments {
  kvm_segment code;  // CS
  kvm_segment data;  // DS, ES, FS, GS, SS
  kvm_segment tss;   // TR
  kvm_dtable gdt;
  kvm_dtable idt;    // base 0, limit 0: no IDT until the kernel loads one (interrupts are off)
};

BootSegments boot_segments(BootMode mode);

// The 8-byte descriptor for a kvm_segment (SDM Vol. 3 §3.4.5, Figure 3-8): limit in 4 KiB units
// when g is set. For a system segment in long mode (the TSS) this is the low half; the high
// half is base >> 32.
uint64_t encode_segment_descriptor(const kvm_segment& seg);

// Writes the GDT above (encoding segs) and a zeroed TSS at kBootTssAddr.
Status write_boot_gdt(const GuestMemory& mem, const BootSegments& segs, BootMode mode);

}  // namespace hcnode::compute::x86
