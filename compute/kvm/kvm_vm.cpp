#include "compute/kvm/kvm_vm.hpp"

#include <sys/ioctl.h>

#include "base/mmap_region.hpp"

namespace hcnode::kvm {

int KvmVm::check_extension(int cap) const {
  int r = ::ioctl(fd_.get(), KVM_CHECK_EXTENSION, cap);
  return r < 0 ? 0 : r;
}

Status KvmVm::set_user_memory_region(uint32_t slot, uint64_t guest_phys, uint64_t size,
                                     void* host_addr, uint32_t flags) {
  kvm_userspace_memory_region region{};
  region.slot = slot;
  region.flags = flags;
  region.guest_phys_addr = guest_phys;
  region.memory_size = size;
  region.userspace_addr = reinterpret_cast<uint64_t>(host_addr);
  if (::ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION, &region) < 0) {
    return fail(from_errno("KVM_SET_USER_MEMORY_REGION slot " + std::to_string(slot)));
  }
  return {};
}

Status KvmVm::set_tss_addr(uint64_t addr) {
  if (::ioctl(fd_.get(), KVM_SET_TSS_ADDR, static_cast<unsigned long>(addr)) < 0) {
    return fail(from_errno("KVM_SET_TSS_ADDR"));
  }
  return {};
}

Status KvmVm::set_identity_map_addr(uint64_t addr) {
  if (::ioctl(fd_.get(), KVM_SET_IDENTITY_MAP_ADDR, &addr) < 0) {
    return fail(from_errno("KVM_SET_IDENTITY_MAP_ADDR"));
  }
  return {};
}

Status KvmVm::create_irqchip() {
  if (::ioctl(fd_.get(), KVM_CREATE_IRQCHIP, 0) < 0) {
    return fail(from_errno("KVM_CREATE_IRQCHIP"));
  }
  return {};
}

Status KvmVm::create_pit2() {
  kvm_pit_config config{};
  if (::ioctl(fd_.get(), KVM_CREATE_PIT2, &config) < 0) {
    return fail(from_errno("KVM_CREATE_PIT2"));
  }
  return {};
}

Result<KvmVcpu> KvmVm::create_vcpu(uint32_t id, size_t mmap_size) {
  int fd = ::ioctl(fd_.get(), KVM_CREATE_VCPU, static_cast<unsigned long>(id));
  if (fd < 0) {
    return fail(from_errno("KVM_CREATE_VCPU " + std::to_string(id)));
  }
  Fd owned(fd);
  MmapRegion run = HCN_TRY(MmapRegion::shared_fd(owned.get(), mmap_size));
  return KvmVcpu(std::move(owned), std::move(run), id);
}

}  // namespace hcnode::kvm
