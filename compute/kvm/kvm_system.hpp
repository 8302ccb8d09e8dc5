// KvmSystem: the owner of an open /dev/kvm (system ioctls).
//
// One per VMM process. Each method issues one ioctl and is named after it. Thread-safety: the
// system ioctls used here are safe to call from any thread.
#pragma once

#include <linux/kvm.h>

#include <memory>
#include <string>
#include <vector>

#include "base/fd.hpp"
#include "base/result.hpp"
#include "compute/kvm/kvm_vm.hpp"

namespace hcnode::kvm {

class KvmSystem {
 public:
  // Opens path (default /dev/kvm) and checks KVM_GET_API_VERSION == 12. The error says how to
  // fix the usual causes (module not loaded, no permission).
  static Result<KvmSystem> open(const std::string& path = "/dev/kvm");

  int fd() const { return fd_.get(); }

  // KVM_CHECK_EXTENSION: 0 when unsupported, otherwise a capability-specific value.
  int check_extension(int cap) const;

  // KVM_GET_VCPU_MMAP_SIZE: size of the struct kvm_run mapping of each vCPU.
  Result<size_t> vcpu_mmap_size() const;

  // KVM_GET_SUPPORTED_CPUID.
  Result<std::vector<kvm_cpuid_entry2>> supported_cpuid() const;

  // KVM_CREATE_VM (type 0: the default x86 VM).
  Result<KvmVm> create_vm() const;

 private:
  explicit KvmSystem(Fd fd) : fd_(std::move(fd)) {}
  Fd fd_;
};

}  // namespace hcnode::kvm
