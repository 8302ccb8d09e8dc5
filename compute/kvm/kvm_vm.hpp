// KvmVm: the owner of a KVM VM file descriptor (VM ioctls).
//
// Owned by the VMM control thread; the ioctls here are called during build and from control
// requests, never from vCPU threads (which use their KvmVcpu).
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

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
  // KVM_CREATE_PIT2 (with a dummy PC speaker on port 0x61, as guests poke it).
  Status create_pit2();

  // KVM_IRQ_LINE: sets the level of an in-kernel irqchip input (GSI).
  Status irq_line(uint32_t gsi, bool level);

  // KVM_SET_GSI_ROUTING: replaces the whole routing table (irqchip pins and MSI routes).
  Status set_gsi_routing(const std::vector<kvm_irq_routing_entry>& entries);

  // KVM_IRQFD: a write to eventfd injects gsi; deassign removes the binding.
  Status irqfd(int eventfd, uint32_t gsi, bool deassign = false);

  // KVM_IOEVENTFD for an MMIO (is_pio=false) or PIO address: guest writes of `len` bytes are
  // completed in the kernel and signal eventfd (any value; no datamatch).
  Status ioeventfd(uint64_t addr, uint32_t len, int eventfd, bool is_pio, bool deassign = false);

  // KVM_GET_CLOCK / KVM_SET_CLOCK (kvmclock base; part of the state that migrates).
  Result<kvm_clock_data> get_clock() const;
  Status set_clock(const kvm_clock_data& clock);

  // KVM_CREATE_VCPU; mmap_size from KvmSystem::vcpu_mmap_size().
  Result<KvmVcpu> create_vcpu(uint32_t id, size_t mmap_size);

 private:
  friend class KvmSystem;
  explicit KvmVm(Fd fd) : fd_(std::move(fd)) {}
  Fd fd_;
};

}  // namespace hcnode::kvm
