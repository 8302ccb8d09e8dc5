// KvmVm: the owner of a KVM VM file descriptor (VM ioctls).
//
// Owned by the VMM control thread; the ioctls here are called during build and from control
// requests, never from vCPU threads (which use their KvmVcpu).
#pragma once

#include <linux/kvm.h>

#include <cstdint>

#include "base/fd.hpp"
#include "base/result.hpp"
#include "compute/kvm/kvm_vcpu.hpp"

namespace hcnode::kvm {

class KvmVm {
 public:
  int fd() const { return fd_.get(); }

  // KVM_CHECK_EXTENSION on the VM fd (some capabilities are per VM).
  int check_extension(int cap) const;

  // KVM_SET_USER_MEMORY_REGION. SAFETY: host_addr..host_addr+size must stay mapped and owned by
  // the caller for as long as the slot exists (the guest reads and writes it behind our back).
  Status set_user_memory_region(uint32_t slot, uint64_t guest_phys, uint64_t size, void* host_addr,
                                uint32_t flags = 0);

  // KVM_SET_TSS_ADDR: three pages Intel VMX needs below 4 GiB; harmless elsewhere.
  Status set_tss_addr(uint64_t addr);
  // KVM_SET_IDENTITY_MAP_ADDR.
  Status set_identity_map_addr(uint64_t addr);
  // KVM_CREATE_IRQCHIP: in-kernel PIC + IOAPIC (LAPICs come with each vCPU).
  Status create_irqchip();
  // KVM_CREATE_PIT2.
  Status create_pit2();

  // KVM_CREATE_VCPU; mmap_size from KvmSystem::vcpu_mmap_size().
  Result<KvmVcpu> create_vcpu(uint32_t id, size_t mmap_size);

 private:
  friend class KvmSystem;
  explicit KvmVm(Fd fd) : fd_(std::move(fd)) {}
  Fd fd_;
};

}  // namespace hcnode::kvm
