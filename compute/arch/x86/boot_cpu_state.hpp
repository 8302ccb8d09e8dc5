// The bootstrap processor's initial register state for each boot path, as plain data.
//
// PVH (xen docs/misc/pvh.pandoc, "Initial register state"):
//   32-bit protected mode, paging off: CR0 = PE | ET, CR4 = 0, EFER = 0; CS flat 32-bit
//   execute/read, DS/ES/FS/GS/SS flat 32-bit read/write; TR a busy 32-bit TSS (VM entry needs a
//   usable TR); EBX = hvm_start_info address; EIP = the XEN_ELFNOTE_PHYS32_ENTRY address;
//   EFLAGS = 0x2 (interrupts off).
// Linux 64-bit (Documentation/x86/boot.rst, "64-bit BOOT PROTOCOL"):
//   long mode with paging: CR0 = PE | ET | PG, CR4 = PAE, EFER = LME | LMA, CR3 = identity
//   map of 0-4 GiB; CS = __BOOT_CS (0x10, 64-bit code), DS/ES/SS (and FS/GS) = __BOOT_DS (0x18);
//   RSI = zero page address; RIP = load address + 0x200; interrupts off.
// Both set RSP to a small boot stack (kBootStackTop), which neither protocol promises but
// costs nothing, and write the GDT (+ TSS, + page tables for 64-bit) they refer to.
//
// The VMM applies the state with KVM_SET_REGS (regs as is) and with apply_to_sregs() on top of
// the vCPU's own KVM_GET_SREGS, so that fields this file does not own (APIC base, LDT, CR2,
// CR8, the pending-interrupt bitmap) keep KVM's values.
#pragma once

#include <linux/kvm.h>

#include <cstdint>

#include "base/result.hpp"
#include "compute/memory/guest_memory.hpp"

namespace hcnode::compute::x86 {

// Control register and EFER bits (SDM Vol. 3 §2.5, §2.2.1).
inline constexpr uint64_t kCr0Pe = 1ull << 0;   // protection enable
inline constexpr uint64_t kCr0Et = 1ull << 4;   // extension type (reads as 1 on modern CPUs)
inline constexpr uint64_t kCr0Pg = 1ull << 31;  // paging
inline constexpr uint64_t kCr4Pae = 1ull << 5;
inline constexpr uint64_t kEferLme = 1ull << 8;
inline constexpr uint64_t kEferLma = 1ull << 10;
inline constexpr uint64_t kRflagsReserved = 1ull << 1;  // bit 1 always reads 1; IF = 0

struct BootCpuState {
  kvm_regs regs{};  // every general register, RIP and RFLAGS: KVM_SET_REGS as is
  kvm_segment cs{}, ds{}, es{}, fs{}, gs{}, ss{}, tr{};
  kvm_dtable gdt{}, idt{};
  uint64_t cr0 = 0;
  uint64_t cr3 = 0;
  uint64_t cr4 = 0;
  uint64_t efer = 0;
};

// Writes the boot GDT and TSS; returns the PVH entry state.
Result<BootCpuState> setup_pvh_boot_cpu(const GuestMemory& mem, uint32_t entry, uint32_t start_info_addr);

// Writes the boot GDT, TSS and identity page tables; returns the 64-bit entry state.
Result<BootCpuState> setup_linux64_boot_cpu(const GuestMemory& mem, uint64_t entry, uint64_t zero_page_addr);

// Overwrites the segments (CS, DS, ES, FS, GS, SS, TR), GDT, IDT, CR0, CR3, CR4 and EFER of
// sregs (from KVM_GET_SREGS); leaves everything else as KVM had it.
void apply_to_sregs(const BootCpuState& state, kvm_sregs& sregs);

}  // namespace hcnode::compute::x86
