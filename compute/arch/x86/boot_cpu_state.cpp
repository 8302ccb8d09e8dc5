#include "compute/arch/x86/boot_cpu_state.hpp"

#include "compute/arch/x86/boot_layout.hpp"
#include "compute/arch/x86/gdt.hpp"
#include "compute/arch/x86/page_tables.hpp"

namespace hcnode::compute::x86 {
namespace {

BootCpuState with_segments(const BootSegments& segs) {
  BootCpuState st;
  st.cs = segs.code;
  st.ds = st.es = st.fs = st.gs = st.ss = segs.data;
  st.tr = segs.tss;
  st.gdt = segs.gdt;
  st.idt = segs.idt;
  st.regs.rflags = kRflagsReserved;
  st.regs.rsp = kBootStackTop;
  return st;
}

}  // namespace

Result<BootCpuState> setup_pvh_boot_cpu(const GuestMemory& mem, uint32_t entry, uint32_t start_info_addr) {
  const BootSegments segs = boot_segments(BootMode::kProtected32);
  HCN_TRY_STATUS(write_boot_gdt(mem, segs, BootMode::kProtected32));
  BootCpuState st = with_segments(segs);
  st.regs.rip = entry;
  st.regs.rbx = start_info_addr;
  st.cr0 = kCr0Pe | kCr0Et;
  st.cr3 = 0;
  st.cr4 = 0;
  st.efer = 0;
  return st;
}

Result<BootCpuState> setup_linux64_boot_cpu(const GuestMemory& mem, uint64_t entry, uint64_t zero_page_addr) {
  const BootSegments segs = boot_segments(BootMode::kLong64);
  HCN_TRY_STATUS(write_boot_gdt(mem, segs, BootMode::kLong64));
  BootCpuState st = with_segments(segs);
  st.cr3 = HCN_TRY(write_identity_page_tables(mem));
  st.regs.rip = entry;
  st.regs.rsi = zero_page_addr;
  st.cr0 = kCr0Pe | kCr0Et | kCr0Pg;
  st.cr4 = kCr4Pae;
  // LMA is what the CPU sets when paging turns on with LME; KVM_SET_SREGS takes the resulting
  // state directly, so both bits are set together.
  st.efer = kEferLme | kEferLma;
  return st;
}

void apply_to_sregs(const BootCpuState& state, kvm_sregs& sregs) {
  sregs.cs = state.cs;
  sregs.ds = state.ds;
  sregs.es = state.es;
  sregs.fs = state.fs;
  sregs.gs = state.gs;
  sregs.ss = state.ss;
  sregs.tr = state.tr;
  sregs.gdt = state.gdt;
  sregs.idt = state.idt;
  sregs.cr0 = state.cr0;
  sregs.cr3 = state.cr3;
  sregs.cr4 = state.cr4;
  sregs.efer = state.efer;
}

}  // namespace hcnode::compute::x86
