#include <catch2/catch.hpp>

#include <optional>

#include "compute/arch/x86/boot_cpu_state.hpp"
#include "compute/arch/x86/boot_layout.hpp"
#include "compute/arch/x86/gdt.hpp"
#include "compute/arch/x86/page_tables.hpp"
#include "tests/fakes/fake_guest_memory.hpp"

using namespace hcnode;
using namespace hcnode::compute::x86;
using hcnode::testing::FakeGuestMemory;

namespace {

// 4-level walk (SDM Vol. 3 §4.5) through the tables in guest memory; nullopt when not present.
std::optional<uint64_t> translate(const FakeGuestMemory& mem, uint64_t cr3, uint64_t va) {
  constexpr uint64_t kAddrMask = 0x000ffffffffff000;
  const uint64_t pml4e = mem.read_obj<uint64_t>((cr3 & kAddrMask) + ((va >> 39) & 511) * 8).value();
  if ((pml4e & kPtePresent) == 0) {
    return std::nullopt;
  }
  const uint64_t pdpte = mem.read_obj<uint64_t>((pml4e & kAddrMask) + ((va >> 30) & 511) * 8).value();
  if ((pdpte & kPtePresent) == 0) {
    return std::nullopt;
  }
  REQUIRE((pdpte & kPteLargePage) == 0);
  const uint64_t pde = mem.read_obj<uint64_t>((pdpte & kAddrMask) + ((va >> 21) & 511) * 8).value();
  if ((pde & kPtePresent) == 0) {
    return std::nullopt;
  }
  REQUIRE((pde & kPteLargePage) != 0);  // 2 MiB pages only
  REQUIRE((pde & kPteWritable) != 0);
  return (pde & 0x000fffffffe00000) | (va & 0x1fffff);
}

uint64_t gdt_entry(const FakeGuestMemory& mem, const BootCpuState& st, uint16_t selector) {
  REQUIRE(selector + 7u <= st.gdt.limit);
  return mem.read_obj<uint64_t>(st.gdt.base + selector).value();
}

void check_flat(const kvm_segment& s, uint8_t type, uint8_t db, uint8_t l) {
  CHECK(s.base == 0);
  CHECK(s.limit == 0xffffffff);
  CHECK(s.type == type);
  CHECK(s.present == 1);
  CHECK(s.dpl == 0);
  CHECK(s.s == 1);
  CHECK(s.g == 1);
  CHECK(s.db == db);
  CHECK(s.l == l);
  CHECK(s.unusable == 0);
}

}  // namespace

TEST_CASE("x86 PVH boot CPU state: 32-bit protected mode, EBX = start_info", "[x86][cpu][pvh]") {
  FakeGuestMemory mem(16 << 20);
  auto st = setup_pvh_boot_cpu(mem, 0x100010, kPvhStartInfoAddr);
  REQUIRE(st.has_value());
  CHECK(st->regs.rip == 0x100010);
  CHECK(st->regs.rbx == kPvhStartInfoAddr);
  CHECK(st->regs.rflags == 0x2);
  CHECK(st->cr0 == (kCr0Pe | kCr0Et));
  CHECK(st->cr3 == 0);
  CHECK(st->cr4 == 0);
  CHECK(st->efer == 0);
  check_flat(st->cs, 0xb, 1, 0);
  for (const kvm_segment* s : {&st->ds, &st->es, &st->fs, &st->gs, &st->ss}) {
    check_flat(*s, 0x3, 1, 0);
  }
  CHECK(st->tr.type == 0xb);
  CHECK(st->tr.s == 0);
  CHECK(st->tr.present == 1);
  CHECK(st->tr.limit == 0x67);
  CHECK(st->tr.base == kBootTssAddr);
  // The GDT in memory holds the same segments (flat 32-bit code: 0x00cf9b000000ffff).
  CHECK(gdt_entry(mem, *st, st->cs.selector) == 0x00cf9b000000ffffull);
  CHECK(gdt_entry(mem, *st, st->ds.selector) == 0x00cf93000000ffffull);
  CHECK(gdt_entry(mem, *st, st->tr.selector) == encode_segment_descriptor(st->tr));
  CHECK(gdt_entry(mem, *st, 0) == 0);
}

TEST_CASE("x86 64-bit boot CPU state follows the Linux 64-bit boot protocol", "[x86][cpu][linux64]") {
  FakeGuestMemory mem(64 << 20);
  auto st = setup_linux64_boot_cpu(mem, 0x100200, kZeroPageAddr);
  REQUIRE(st.has_value());
  CHECK(st->regs.rip == 0x100200);
  CHECK(st->regs.rsi == kZeroPageAddr);
  CHECK(st->regs.rflags == 0x2);  // IF clear
  CHECK(st->regs.rsp == kBootStackTop);
  CHECK(st->cr0 == 0x80000011);   // PG | ET | PE
  CHECK(st->cr3 == kPml4Addr);
  CHECK(st->cr4 == 0x20);         // PAE
  CHECK(st->efer == 0x500);       // LME | LMA
  CHECK(st->cs.selector == 0x10);  // __BOOT_CS
  check_flat(st->cs, 0xb, 0, 1);
  for (const kvm_segment* s : {&st->ds, &st->es, &st->ss}) {
    CHECK(s->selector == 0x18);    // __BOOT_DS
    check_flat(*s, 0x3, 1, 0);
  }
  // 64-bit code descriptor (L=1, D=0): 0x00af9b000000ffff; the TSS takes two slots.
  CHECK(gdt_entry(mem, *st, 0x10) == 0x00af9b000000ffffull);
  CHECK(gdt_entry(mem, *st, 0x18) == 0x00cf93000000ffffull);
  CHECK(gdt_entry(mem, *st, 0x20) == encode_segment_descriptor(st->tr));
  CHECK(gdt_entry(mem, *st, 0x28) == 0);  // TSS base bits 63:32
  CHECK(((gdt_entry(mem, *st, 0x20) >> 40) & 0xf) == 0xb);
}

TEST_CASE("x86 64-bit boot page tables identity-map the first 4 GiB", "[x86][cpu][linux64]") {
  FakeGuestMemory mem(64 << 20);
  const auto st = setup_linux64_boot_cpu(mem, 0x100200, kZeroPageAddr).value();
  for (uint64_t va : {uint64_t{0}, kZeroPageAddr, kCmdlineAddr, uint64_t{0x100200}, uint64_t{0x1000000},
                      uint64_t{0x3ffffff}, uint64_t{0xbffff000}, uint64_t{0xfee00000}, uint64_t{0xffffffff}}) {
    INFO("va " << std::hex << va);
    CHECK(translate(mem, st.cr3, va) == std::optional<uint64_t>(va));
  }
  CHECK_FALSE(translate(mem, st.cr3, 1ull << 32).has_value());
  CHECK_FALSE(translate(mem, st.cr3, 1ull << 39).has_value());
}

TEST_CASE("x86 apply_to_sregs keeps KVM's fields it does not own", "[x86][cpu]") {
  FakeGuestMemory mem(64 << 20);
  const auto st = setup_linux64_boot_cpu(mem, 0x100200, kZeroPageAddr).value();
  kvm_sregs sregs{};
  sregs.apic_base = 0xfee00900;
  sregs.cr2 = 0x1234;
  sregs.cr8 = 3;
  sregs.ldt.type = 2;
  sregs.ldt.limit = 0xffff;
  sregs.interrupt_bitmap[0] = 0x80;
  sregs.cr0 = 0x60000010;  // KVM's reset CR0 (CD | NW | ET): replaced
  apply_to_sregs(st, sregs);
  CHECK(sregs.apic_base == 0xfee00900);
  CHECK(sregs.cr2 == 0x1234);
  CHECK(sregs.cr8 == 3);
  CHECK(sregs.ldt.type == 2);
  CHECK(sregs.ldt.limit == 0xffff);
  CHECK(sregs.interrupt_bitmap[0] == 0x80);
  CHECK(sregs.cr0 == st.cr0);
  CHECK(sregs.cr3 == st.cr3);
  CHECK(sregs.cr4 == st.cr4);
  CHECK(sregs.efer == st.efer);
  CHECK(sregs.cs.l == 1);
  CHECK(sregs.ss.selector == 0x18);
  CHECK(sregs.tr.base == kBootTssAddr);
  CHECK(sregs.gdt.base == kBootGdtAddr);
  CHECK(sregs.gdt.limit == kBootGdtLimit);
  CHECK(sregs.idt.limit == 0);
}

TEST_CASE("x86 segment descriptor encoding handles byte-granular limits and high bases", "[x86][cpu]") {
  kvm_segment s{};
  s.base = 0x12345678;
  s.limit = 0x67;
  s.type = 0x9;
  s.present = 1;
  s.g = 0;
  // limit 0x0067, base 15:0 0x5678, base 23:16 0x34, access 0x89, flags/limit 0x00, base 31:24 0x12.
  CHECK(encode_segment_descriptor(s) == 0x1200893456780067ull);
}
