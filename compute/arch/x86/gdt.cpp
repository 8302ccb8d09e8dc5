#include "compute/arch/x86/gdt.hpp"

#include <array>

#include "compute/arch/x86/boot_layout.hpp"

namespace hcnode::compute::x86 {
namespace {

kvm_segment flat_segment(uint16_t selector, uint8_t type, bool long_mode_code) {
  kvm_segment s{};
  s.base = 0;
  s.limit = 0xffffffff;
  s.selector = selector;
  s.type = type;
  s.present = 1;
  s.dpl = 0;
  s.s = 1;                              // code/data, not a system segment
  s.l = long_mode_code ? 1 : 0;         // 64-bit code segment
  s.db = long_mode_code ? 0 : 1;        // L=1 requires D=0 (SDM Vol. 3 §5.2.1)
  s.g = 1;                              // limit in 4 KiB units: 4 GiB
  return s;
}

}  // namespace

BootSegments boot_segments(BootMode mode) {
  BootSegments segs{};
  const bool long_mode = mode == BootMode::kLong64;
  segs.code = flat_segment(kBootCsSelector, kSegTypeCodeExecReadAccessed, long_mode);
  segs.data = flat_segment(kBootDsSelector, kSegTypeDataRwAccessed, false);
  segs.tss = kvm_segment{};
  segs.tss.base = kBootTssAddr;
  segs.tss.limit = kBootTssLimit;
  segs.tss.selector = kBootTssSelector;
  segs.tss.type = kSegTypeTssBusy;
  segs.tss.present = 1;
  segs.tss.s = 0;  // system segment
  segs.gdt = kvm_dtable{kBootGdtAddr, kBootGdtLimit, {0, 0, 0}};
  segs.idt = kvm_dtable{0, 0, {0, 0, 0}};
  return segs;
}

uint64_t encode_segment_descriptor(const kvm_segment& seg) {
  const uint64_t limit = seg.g ? (uint64_t{seg.limit} >> 12) : uint64_t{seg.limit};
  const uint64_t base = seg.base;
  return (limit & 0xffff) |                    // limit 15:0
         ((base & 0xffffff) << 16) |           // base 23:0
         (uint64_t{seg.type} & 0xf) << 40 |    // type
         (uint64_t{seg.s} & 1) << 44 |         // S: code/data
         (uint64_t{seg.dpl} & 3) << 45 |       // DPL
         (uint64_t{seg.present} & 1) << 47 |   // P
         ((limit >> 16) & 0xf) << 48 |         // limit 19:16
         (uint64_t{seg.avl} & 1) << 52 |       // AVL
         (uint64_t{seg.l} & 1) << 53 |         // L: 64-bit code
         (uint64_t{seg.db} & 1) << 54 |        // D/B
         (uint64_t{seg.g} & 1) << 55 |         // G
         ((base >> 24) & 0xff) << 56;          // base 31:24
}

Status write_boot_gdt(const GuestMemory& mem, const BootSegments& segs, BootMode mode) {
  std::array<uint64_t, (kBootGdtLimit + 1) / 8> gdt{};
  gdt[kBootCsSelector / 8] = encode_segment_descriptor(segs.code);
  gdt[kBootDsSelector / 8] = encode_segment_descriptor(segs.data);
  gdt[kBootTssSelector / 8] = encode_segment_descriptor(segs.tss);
  if (mode == BootMode::kLong64) {
    gdt[kBootTssSelector / 8 + 1] = segs.tss.base >> 32;  // 16-byte system descriptor (§8.2.3)
  }
  HCN_TRY_STATUS(mem.write_obj(kBootGdtAddr, gdt));
  const std::array<uint8_t, kBootTssLimit + 1> tss{};
  return mem.write_obj(kBootTssAddr, tss);
}

}  // namespace hcnode::compute::x86
