#include "compute/kvm/kvm_system.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>

#include "compute/kvm/kvm_abi.hpp"

namespace hcnode::kvm {

Result<KvmSystem> KvmSystem::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    std::string hint;
    if (e == ENOENT) {
      hint = " (is the kvm module loaded? `modprobe kvm_intel`, `kvm_amd` or `kvm_pvm`)";
    } else if (e == EACCES || e == EPERM) {
      hint = " (run as root or add the user to the group owning " + path + ")";
    }
    return fail(e, "open " + path + hint);
  }
  KvmSystem system{Fd(fd)};
  // KVM_GET_API_VERSION: 12 since Linux 2.6.22, and the only version this code speaks.
  int version = ::ioctl(fd, KVM_GET_API_VERSION, 0);
  if (version < 0) {
    return fail(from_errno("KVM_GET_API_VERSION"));
  }
  if (version != KVM_API_VERSION) {
    return fail(ENOTSUP, "KVM API version " + std::to_string(version) + ", need " +
                             std::to_string(KVM_API_VERSION));
  }
  return system;
}

int KvmSystem::check_extension(int cap) const {
  int r = ::ioctl(fd_.get(), KVM_CHECK_EXTENSION, cap);
  return r < 0 ? 0 : r;
}

Result<size_t> KvmSystem::vcpu_mmap_size() const {
  int r = ::ioctl(fd_.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (r < 0) {
    return fail(from_errno("KVM_GET_VCPU_MMAP_SIZE"));
  }
  return static_cast<size_t>(r);
}

Result<std::vector<kvm_cpuid_entry2>> KvmSystem::supported_cpuid() const {
  // The kernel says E2BIG when nent is too small; grow until it fits.
  for (uint32_t nent = 128; nent <= 4096; nent *= 2) {
    FlexBuffer<CpuidHeader, kvm_cpuid_entry2> buf(nent);
    buf.header()->nent = nent;
    if (::ioctl(fd_.get(), kGetSupportedCpuid, buf.data()) == 0) {
      return std::vector<kvm_cpuid_entry2>(buf.entries(), buf.entries() + buf.header()->nent);
    }
    if (errno != E2BIG) {
      return fail(from_errno("KVM_GET_SUPPORTED_CPUID"));
    }
  }
  return fail(E2BIG, "KVM_GET_SUPPORTED_CPUID: more than 4096 entries");
}

Result<KvmVm> KvmSystem::create_vm() const {
  int fd = ::ioctl(fd_.get(), KVM_CREATE_VM, 0);
  if (fd < 0) {
    return fail(from_errno("KVM_CREATE_VM"));
  }
  return KvmVm(Fd(fd));
}

}  // namespace hcnode::kvm
