// KVM-backed interrupt delivery: the in-kernel irqchip's lines, MSI routes fed by irqfds, and
// ioeventfd registration. Implements the device-facing interfaces of devices/interrupts.hpp.
//
// GSI layout: 0..23 are the IOAPIC pins (0..15 also reach the PIC), as KVM_CREATE_IRQCHIP sets
// them up; MSI vectors get GSIs from 24 upwards, each with an irqfd. KVM_SET_GSI_ROUTING
// replaces the whole table, so every update re-sends the irqchip routes together with all MSI
// routes.
//
// Thread-safety: all methods are thread-safe (one mutex around the routing table); trigger() of
// a vector is a lock-free eventfd write.
#pragma once

#include <linux/kvm.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "compute/devices/interrupts.hpp"
#include "compute/kvm/kvm_vm.hpp"

namespace hcnode::kvm {

class KvmInterrupts final : public compute::InterruptController,
                            public compute::IoEventRegistrar,
                            public std::enable_shared_from_this<KvmInterrupts> {
 public:
  static constexpr uint32_t kIoapicPins = 24;

  // vm must outlive this object and everything it hands out. Installs the routing table.
  static Result<std::shared_ptr<KvmInterrupts>> create(KvmVm& vm);

  Result<std::unique_ptr<compute::IrqLine>> legacy_line(uint32_t gsi) override;
  Result<std::unique_ptr<compute::MsiVector>> allocate_msi() override;

  Status register_mmio_ioevent(uint64_t addr, uint32_t len, int fd) override;
  Status unregister_mmio_ioevent(uint64_t addr, uint32_t len, int fd) override;

  // Called by vectors (they hold a shared_ptr to this object).
  Status set_msi_route(uint32_t gsi, const compute::MsiMessage& message);
  void release_msi(uint32_t gsi, int eventfd);

 private:
  explicit KvmInterrupts(KvmVm& vm) : vm_(vm) {}
  Status commit_routes();  // caller holds mu_

  KvmVm& vm_;
  mutable std::mutex mu_;
  std::map<uint32_t, std::optional<compute::MsiMessage>> msi_;  // guarded by mu_; gsi -> message
  uint32_t next_gsi_ = kIoapicPins;                             // guarded by mu_
};

}  // namespace hcnode::kvm
