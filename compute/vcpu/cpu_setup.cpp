#include "compute/vcpu/cpu_setup.hpp"

#include <unistd.h>

#include "base/endian.hpp"

namespace hcnode::compute {
namespace {

// CPUID bits (Intel SDM vol. 2A, CPUID instruction; KVM's Documentation/virt/kvm/x86/cpuid.rst).
constexpr uint32_t kLeaf1EcxHypervisor = 1u << 31;
constexpr uint32_t kLeaf1EdxHtt = 1u << 28;
constexpr uint32_t kKvmCpuidSignature = 0x40000000;
constexpr uint32_t kKvmCpuidFeatures = 0x40000001;
constexpr uint32_t kTimingLeaf = 0x40000010;
// KVM_FEATURE_* bits of 0x40000001 EAX that make the guest issue hypercalls.
constexpr uint32_t kKvmFeaturePvUnhalt = 1u << 7;
constexpr uint32_t kKvmFeaturePvSendIpi = 1u << 11;
constexpr uint32_t kKvmFeaturePvSchedYield = 1u << 13;
constexpr uint32_t kKvmHypercallFeatures = kKvmFeaturePvUnhalt | kKvmFeaturePvSendIpi | kKvmFeaturePvSchedYield;

uint32_t bits_for(uint32_t count) {
  uint32_t bits = 0;
  while ((1u << bits) < count) {
    ++bits;
  }
  return bits;
}

}  // namespace

std::vector<kvm_cpuid_entry2> filter_cpuid(const std::vector<kvm_cpuid_entry2>& supported,
                                           const CpuidOptions& options) {
  std::vector<kvm_cpuid_entry2> out;
  out.reserve(supported.size() + 1);
  const uint32_t apic_id = options.vcpu_index;
  const uint32_t count = options.vcpu_count == 0 ? 1 : options.vcpu_count;
  bool have_timing_leaf = false;
  for (kvm_cpuid_entry2 e : supported) {
    switch (e.function) {
      case 0x1:
        // EBX[31:24] initial APIC id, EBX[23:16] logical processors per package.
        e.ebx = (e.ebx & 0x0000FFFF) | (apic_id << 24) | ((count & 0xFF) << 16);
        e.ecx |= kLeaf1EcxHypervisor;
        if (count > 1) {
          e.edx |= kLeaf1EdxHtt;
        } else {
          e.edx &= ~kLeaf1EdxHtt;
        }
        break;
      case 0x4:
        // EAX[31:26]: cores per package - 1 (all our vCPUs are cores of one package);
        // EAX[25:14]: logical processors sharing this cache - 1 (one each).
        e.eax = (e.eax & 0x3FFF) | (((count - 1) & 0x3F) << 26);
        break;
      case 0xA:
        e.eax = e.ebx = e.ecx = e.edx = 0;  // no architectural PMU
        break;
      case 0xB:
      case 0x1F:
        // Extended topology: level 0 = SMT (1 thread per core), level 1 = core (count cores).
        e.edx = apic_id;
        if (e.index == 0) {
          e.eax = 0;
          e.ebx = 1;
          e.ecx = (1u << 8) | 0;  // level type SMT
        } else if (e.index == 1) {
          e.eax = bits_for(count);
          e.ebx = count;
          e.ecx = (2u << 8) | 1;  // level type core
        } else {
          e.eax = e.ebx = 0;
          e.ecx = e.index;  // invalid level
        }
        break;
      case kKvmCpuidSignature:
        if (options.tsc_khz != 0 && e.eax < kTimingLeaf) {
          e.eax = kTimingLeaf;
        }
        break;
      case kKvmCpuidFeatures:
        if (!options.pv_hypercalls) {
          e.eax &= ~kKvmHypercallFeatures;
        }
        break;
      case kTimingLeaf:
        have_timing_leaf = true;
        e.eax = options.tsc_khz;
        e.ebx = 1000000;  // LAPIC timer bus frequency in kHz: KVM's LAPIC runs at 1 GHz
        break;
      default:
        break;
    }
    out.push_back(e);
  }
  if (options.tsc_khz != 0 && !have_timing_leaf) {
    // The de-facto hypervisor timing leaf (VMware/KVM/QEMU with invtsc): TSC and bus rates in
    // kHz, so a guest need not calibrate against the PIT.
    kvm_cpuid_entry2 timing{};
    timing.function = kTimingLeaf;
    timing.eax = options.tsc_khz;
    timing.ebx = 1000000;
    out.push_back(timing);
  }
  return out;
}

std::vector<kvm_msr_entry> boot_msrs() {
  auto msr = [](uint32_t index, uint64_t value) {
    kvm_msr_entry e{};
    e.index = index;
    e.data = value;
    return e;
  };
  return {
      msr(0x174, 0),                   // IA32_SYSENTER_CS
      msr(0x175, 0),                   // IA32_SYSENTER_ESP
      msr(0x176, 0),                   // IA32_SYSENTER_EIP
      msr(0xC0000081, 0),              // STAR
      msr(0xC0000082, 0),              // LSTAR
      msr(0xC0000083, 0),              // CSTAR
      msr(0xC0000084, 0),              // SFMASK
      msr(0xC0000102, 0),              // KERNEL_GS_BASE
      msr(0x10, 0),                    // TSC
      msr(0x1A0, 1),                   // IA32_MISC_ENABLE: fast strings
      msr(0x2FF, (1u << 11) | 0x6),    // MTRRdefType: MTRRs on, default write-back
  };
}

kvm_fpu boot_fpu() {
  kvm_fpu fpu{};
  fpu.fcw = 0x37F;
  fpu.mxcsr = 0x1F80;
  return fpu;
}

void configure_lapic_lints(kvm_lapic_state& lapic) {
  // LVT registers (Intel SDM vol. 3A 10.5.1): LINT0 at 0x350, LINT1 at 0x360; delivery mode in
  // bits 10:8 (ExtINT = 7, NMI = 4).
  // kvm_lapic_state.regs is the APIC register page as the guest sees it (little-endian).
  auto set_delivery = [&](size_t offset, uint32_t mode) {
    const uint32_t value = load_le32(lapic.regs + offset);
    store_le32(lapic.regs + offset, (value & ~0x700u) | (mode << 8));
  };
  set_delivery(0x350, 7);
  set_delivery(0x360, 4);
}

bool host_is_pvm() { return ::access("/sys/module/kvm_pvm", F_OK) == 0; }

}  // namespace hcnode::compute
