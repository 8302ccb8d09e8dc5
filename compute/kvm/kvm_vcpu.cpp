#include "compute/kvm/kvm_vcpu.hpp"

#include <sys/ioctl.h>

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

}  // namespace hcnode::kvm
