// KvmVcpu: the owner of a vCPU file descriptor and its mmapped struct kvm_run.
//
// Owned by its vCPU thread once the VM runs (KVM requires vCPU ioctls from one thread at a time;
// KVM_RUN from the thread that will keep running it). Other threads only touch
// kvm_run->immediate_exit to kick it.
#pragma once

#include <linux/kvm.h>

#include <cstdint>

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

 private:
  friend class KvmVm;
  KvmVcpu(Fd fd, MmapRegion run, uint32_t id) : fd_(std::move(fd)), run_(std::move(run)), id_(id) {}
  Fd fd_;
  MmapRegion run_;
  uint32_t id_;
};

}  // namespace hcnode::kvm
