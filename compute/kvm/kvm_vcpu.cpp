#include "compute/kvm/kvm_vcpu.hpp"

#include <sys/ioctl.h>

#include <algorithm>

#include "compute/kvm/kvm_abi.hpp"

namespace hcnode::kvm {

Status KvmVcpu::run() {
  if (::ioctl(fd_.get(), KVM_RUN, 0) < 0) {
    return fail(from_errno("KVM_RUN vcpu" + std::to_string(id_)));
  }
  return {};
}

Result<kvm_regs> KvmVcpu::get_regs() const {
  kvm_regs regs{};
  if (::ioctl(fd_.get(), KVM_GET_REGS, &regs) < 0) {
    return fail(from_errno("KVM_GET_REGS"));
  }
  return regs;
}

Status KvmVcpu::set_regs(const kvm_regs& regs) {
  if (::ioctl(fd_.get(), KVM_SET_REGS, &regs) < 0) {
    return fail(from_errno("KVM_SET_REGS"));
  }
  return {};
}

Result<kvm_sregs> KvmVcpu::get_sregs() const {
  kvm_sregs sregs{};
  if (::ioctl(fd_.get(), KVM_GET_SREGS, &sregs) < 0) {
    return fail(from_errno("KVM_GET_SREGS"));
  }
  return sregs;
}

Status KvmVcpu::set_sregs(const kvm_sregs& sregs) {
  if (::ioctl(fd_.get(), KVM_SET_SREGS, &sregs) < 0) {
    return fail(from_errno("KVM_SET_SREGS"));
  }
  return {};
}

Status KvmVcpu::set_cpuid(const std::vector<kvm_cpuid_entry2>& entries) {
  FlexBuffer<CpuidHeader, kvm_cpuid_entry2> buf(entries.size());
  buf.header()->nent = static_cast<uint32_t>(entries.size());
  std::copy(entries.begin(), entries.end(), buf.entries());
  if (::ioctl(fd_.get(), kSetCpuid2, buf.data()) < 0) {
    return fail(from_errno("KVM_SET_CPUID2"));
  }
  return {};
}

Status KvmVcpu::set_msrs(const std::vector<kvm_msr_entry>& entries) {
  FlexBuffer<MsrsHeader, kvm_msr_entry> buf(entries.size());
  buf.header()->nmsrs = static_cast<uint32_t>(entries.size());
  std::copy(entries.begin(), entries.end(), buf.entries());
  int r = ::ioctl(fd_.get(), kSetMsrs, buf.data());
  if (r < 0) {
    return fail(from_errno("KVM_SET_MSRS"));
  }
  if (static_cast<size_t>(r) != entries.size()) {
    // KVM stops at the first MSR it refuses and returns how many it set.
    return fail(EINVAL, "KVM_SET_MSRS: MSR " + std::to_string(entries[static_cast<size_t>(r)].index) +
                            " refused (" + std::to_string(r) + " of " + std::to_string(entries.size()) + " set)");
  }
  return {};
}

Result<std::vector<kvm_msr_entry>> KvmVcpu::get_msrs(const std::vector<uint32_t>& indices) const {
  FlexBuffer<MsrsHeader, kvm_msr_entry> buf(indices.size());
  buf.header()->nmsrs = static_cast<uint32_t>(indices.size());
  for (size_t i = 0; i < indices.size(); ++i) {
    buf.entries()[i] = kvm_msr_entry{};
    buf.entries()[i].index = indices[i];
  }
  int r = ::ioctl(fd_.get(), kGetMsrs, buf.data());
  if (r < 0) {
    return fail(from_errno("KVM_GET_MSRS"));
  }
  return std::vector<kvm_msr_entry>(buf.entries(), buf.entries() + r);
}

Result<uint32_t> KvmVcpu::tsc_khz() const {
  int r = ::ioctl(fd_.get(), KVM_GET_TSC_KHZ, 0);
  if (r < 0) {
    return fail(from_errno("KVM_GET_TSC_KHZ"));
  }
  return static_cast<uint32_t>(r);
}

Result<kvm_fpu> KvmVcpu::get_fpu() const {
  kvm_fpu fpu{};
  if (::ioctl(fd_.get(), KVM_GET_FPU, &fpu) < 0) {
    return fail(from_errno("KVM_GET_FPU"));
  }
  return fpu;
}

Status KvmVcpu::set_fpu(const kvm_fpu& fpu) {
  if (::ioctl(fd_.get(), KVM_SET_FPU, &fpu) < 0) {
    return fail(from_errno("KVM_SET_FPU"));
  }
  return {};
}

Result<kvm_lapic_state> KvmVcpu::get_lapic() const {
  kvm_lapic_state lapic{};
  if (::ioctl(fd_.get(), KVM_GET_LAPIC, &lapic) < 0) {
    return fail(from_errno("KVM_GET_LAPIC"));
  }
  return lapic;
}

Status KvmVcpu::set_lapic(const kvm_lapic_state& lapic) {
  if (::ioctl(fd_.get(), KVM_SET_LAPIC, &lapic) < 0) {
    return fail(from_errno("KVM_SET_LAPIC"));
  }
  return {};
}

Result<kvm_mp_state> KvmVcpu::get_mp_state() const {
  kvm_mp_state state{};
  if (::ioctl(fd_.get(), KVM_GET_MP_STATE, &state) < 0) {
    return fail(from_errno("KVM_GET_MP_STATE"));
  }
  return state;
}

Status KvmVcpu::set_mp_state(const kvm_mp_state& state) {
  kvm_mp_state copy = state;
  if (::ioctl(fd_.get(), KVM_SET_MP_STATE, &copy) < 0) {
    return fail(from_errno("KVM_SET_MP_STATE"));
  }
  return {};
}

}  // namespace hcnode::kvm
