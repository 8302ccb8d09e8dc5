// KvmVcpu: the owner of a vCPU file descriptor and its mmapped struct kvm_run.
//
// Owned by its vCPU thread once the VM runs (KVM requires vCPU ioctls from one thread at a time;
// KVM_RUN from the thread that will keep running it). Other threads only touch
// kvm_run->immediate_exit to kick it.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

#include "base/fd.hpp"
#include "base/mmap_region.hpp"
#include "base/result.hpp"

namespace hcnode::kvm {

class KvmVcpu {
 public:
  int fd() const { return fd_.get(); }
  uint32_t id() const { return id_; }

  // The shared run structure: exit reason and exit data after run().
  // SAFETY: the mapping is at least sizeof(kvm_run) (KVM_GET_VCPU_MMAP_SIZE), page aligned.
  kvm_run* run_state() const { return reinterpret_cast<kvm_run*>(run_.data()); }

  // KVM_RUN. Returns normally on any VM exit; EINTR (a signal kick) is reported as an error
  // with code EINTR so the caller can tell it apart.
  Status run();

  // KVM_GET_REGS / KVM_SET_REGS.
  Result<kvm_regs> get_regs() const;
  Status set_regs(const kvm_regs& regs);
  // KVM_GET_SREGS / KVM_SET_SREGS.
  Result<kvm_sregs> get_sregs() const;
  Status set_sregs(const kvm_sregs& sregs);
  // KVM_SET_CPUID2.
  Status set_cpuid(const std::vector<kvm_cpuid_entry2>& entries);
  // KVM_SET_MSRS: all entries or an error naming how many were accepted.
  Status set_msrs(const std::vector<kvm_msr_entry>& entries);
  // KVM_GET_MSRS for the given indices.
  Result<std::vector<kvm_msr_entry>> get_msrs(const std::vector<uint32_t>& indices) const;
  // KVM_GET_FPU / KVM_SET_FPU.
  Result<kvm_fpu> get_fpu() const;
  Status set_fpu(const kvm_fpu& fpu);
  // KVM_GET_LAPIC / KVM_SET_LAPIC (needs the in-kernel irqchip).
  Result<kvm_lapic_state> get_lapic() const;
  Status set_lapic(const kvm_lapic_state& lapic);
  // KVM_GET_MP_STATE / KVM_SET_MP_STATE.
  Result<kvm_mp_state> get_mp_state() const;
  Status set_mp_state(const kvm_mp_state& state);

  // KVM_GET_TSC_KHZ: the guest TSC rate.
  Result<uint32_t> tsc_khz() const;

  // Asks a running KVM_RUN to return soon (with EINTR) and the next one to return at once.
  // Thread-safe: the only field of kvm_run other threads may touch. Pair with a signal to the
  // vCPU thread to interrupt a KVM_RUN already in progress.
  void set_immediate_exit(bool on) {
    __atomic_store_n(&run_state()->immediate_exit, on ? 1 : 0, __ATOMIC_RELEASE);
  }

 private:
  friend class KvmVm;
  KvmVcpu(Fd fd, MmapRegion run, uint32_t id) : fd_(std::move(fd)), run_(std::move(run)), id_(id) {}
  Fd fd_;
  MmapRegion run_;
  uint32_t id_;
};

}  // namespace hcnode::kvm
