// The x86 CPU model each vCPU gets: CPUID, MSRs, FPU and LAPIC set-up before its first KVM_RUN.
// Pure functions over KVM's structs (unit-tested); vcpu.cpp applies them with ioctls.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

namespace hcnode::compute {

struct CpuidOptions {
  uint32_t vcpu_index = 0;  // becomes the initial (x2)APIC id
  uint32_t vcpu_count = 1;
  // Offer KVM paravirtual features whose use needs a hypercall (PV unhalt/kick, PV IPIs, PV
  // sched-yield). Off on hosts where vmcall never completes (PVM, machine-notes.md): a guest
  // that used them would hang.
  bool pv_hypercalls = true;
  // Advertised in the hypervisor timing leaf 0x40000010 (EAX, kHz); 0 = leave the leaf out.
  uint32_t tsc_khz = 0;
};

// Filters KVM_GET_SUPPORTED_CPUID's answer into one vCPU's CPUID table: topology (APIC ids,
// logical processor counts in leaves 1, 4, 0xB, 0x1F), the hypervisor-present bit, the KVM
// paravirtual leaves, no PMU (leaf 0xA zeroed: nothing in hcnode emulates performance
// counters), and the TSC frequency leaf.
std::vector<kvm_cpuid_entry2> filter_cpuid(const std::vector<kvm_cpuid_entry2>& supported,
                                           const CpuidOptions& options);

// MSR values every vCPU starts with (SYSENTER/SYSCALL MSRs cleared, TSC 0, fast strings on,
// MTRRs enabled with write-back default so guest RAM is cacheable).
std::vector<kvm_msr_entry> boot_msrs();

// FPU state after reset as the SDM defines it (FCW 0x37F, MXCSR 0x1F80).
kvm_fpu boot_fpu();

// Programs LINT0 as ExtINT (the PIC's output) and LINT1 as NMI — what the MP table's local
// interrupt entries promise and what Linux expects of a virtual-wire BSP.
void configure_lapic_lints(kvm_lapic_state& lapic);

// Is this host's KVM the PVM flavour (no hardware virtualization; vmcall never completes)?
bool host_is_pvm();

}  // namespace hcnode::compute
