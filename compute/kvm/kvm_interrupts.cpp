#include "compute/kvm/kvm_interrupts.hpp"

#include <sys/eventfd.h>

#include <vector>

#include <spdlog/spdlog.h>

#include "base/event_fd.hpp"

namespace hcnode::kvm {
namespace {

class KvmIrqLine final : public compute::IrqLine {
 public:
  KvmIrqLine(KvmVm& vm, uint32_t gsi) : vm_(vm), gsi_(gsi) {}
  uint32_t gsi() const override { return gsi_; }
  Status set_level(bool high) override { return vm_.irq_line(gsi_, high); }

 private:
  KvmVm& vm_;
  uint32_t gsi_;
};

class KvmMsiVector final : public compute::MsiVector {
 public:
  KvmMsiVector(std::shared_ptr<KvmInterrupts> owner, uint32_t gsi, EventFd fd)
      : owner_(std::move(owner)), gsi_(gsi), fd_(std::move(fd)) {}
  ~KvmMsiVector() override { owner_->release_msi(gsi_, fd_.fd()); }

  Status configure(const compute::MsiMessage& message) override {
    return owner_->set_msi_route(gsi_, message);
  }
  Status trigger() override { return fd_.signal(); }
  int irqfd() const override { return fd_.fd(); }

 private:
  std::shared_ptr<KvmInterrupts> owner_;
  uint32_t gsi_;
  EventFd fd_;
};

}  // namespace

Result<std::shared_ptr<KvmInterrupts>> KvmInterrupts::create(KvmVm& vm) {
  auto self = std::shared_ptr<KvmInterrupts>(new KvmInterrupts(vm));
  std::lock_guard lock(self->mu_);
  HCN_TRY_STATUS(self->commit_routes());
  return self;
}

Status KvmInterrupts::commit_routes() {
  std::vector<kvm_irq_routing_entry> entries;
  // The irqchip routes KVM_CREATE_IRQCHIP installs by default (arch/x86/kvm/irq_comm.c): GSIs
  // 0..15 to the PIC (master 0..7, slave 8..15) and the IOAPIC, 16..23 to the IOAPIC.
  for (uint32_t gsi = 0; gsi < kIoapicPins; ++gsi) {
    if (gsi < 16) {
      kvm_irq_routing_entry pic{};
      pic.gsi = gsi;
      pic.type = KVM_IRQ_ROUTING_IRQCHIP;
      pic.u.irqchip.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
      pic.u.irqchip.pin = gsi % 8;
      entries.push_back(pic);
    }
    kvm_irq_routing_entry ioapic{};
    ioapic.gsi = gsi;
    ioapic.type = KVM_IRQ_ROUTING_IRQCHIP;
    ioapic.u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
    ioapic.u.irqchip.pin = gsi;
    entries.push_back(ioapic);
  }
  for (const auto& [gsi, message] : msi_) {
    if (!message) {
      continue;  // allocated, not yet programmed by the guest
    }
    kvm_irq_routing_entry msi{};
    msi.gsi = gsi;
    msi.type = KVM_IRQ_ROUTING_MSI;
    msi.u.msi.address_lo = static_cast<uint32_t>(message->address);
    msi.u.msi.address_hi = static_cast<uint32_t>(message->address >> 32);
    msi.u.msi.data = message->data;
    entries.push_back(msi);
  }
  return vm_.set_gsi_routing(entries);
}

Result<std::unique_ptr<compute::IrqLine>> KvmInterrupts::legacy_line(uint32_t gsi) {
  if (gsi >= kIoapicPins) {
    return fail(EINVAL, "legacy interrupt line " + std::to_string(gsi) + " is not an IOAPIC pin");
  }
  return std::unique_ptr<compute::IrqLine>(new KvmIrqLine(vm_, gsi));
}

Result<std::unique_ptr<compute::MsiVector>> KvmInterrupts::allocate_msi() {
  EventFd fd = HCN_TRY(EventFd::create(EFD_NONBLOCK));
  uint32_t gsi;
  {
    std::lock_guard lock(mu_);
    gsi = next_gsi_++;
    msi_.emplace(gsi, std::nullopt);
  }
  if (auto r = vm_.irqfd(fd.fd(), gsi); !r) {
    std::lock_guard lock(mu_);
    msi_.erase(gsi);
    return fail(r.error());
  }
  return std::unique_ptr<compute::MsiVector>(new KvmMsiVector(shared_from_this(), gsi, std::move(fd)));
}

Status KvmInterrupts::set_msi_route(uint32_t gsi, const compute::MsiMessage& message) {
  std::lock_guard lock(mu_);
  auto it = msi_.find(gsi);
  if (it == msi_.end()) {
    return fail(ENOENT, "MSI route for unknown GSI " + std::to_string(gsi));
  }
  if (it->second == message) {
    return {};  // unchanged: skip the (costly) table update
  }
  it->second = message;
  return commit_routes();
}

void KvmInterrupts::release_msi(uint32_t gsi, int eventfd) {
  if (auto r = vm_.irqfd(eventfd, gsi, /*deassign=*/true); !r) {
    spdlog::warn("releasing MSI GSI {}: {}", gsi, r.error().message());
  }
  std::lock_guard lock(mu_);
  msi_.erase(gsi);
  if (auto r = commit_routes(); !r) {
    spdlog::warn("releasing MSI GSI {}: {}", gsi, r.error().message());
  }
}

Status KvmInterrupts::register_mmio_ioevent(uint64_t addr, uint32_t len, int fd) {
  return vm_.ioeventfd(addr, len, fd, /*is_pio=*/false);
}

Status KvmInterrupts::unregister_mmio_ioevent(uint64_t addr, uint32_t len, int fd) {
  return vm_.ioeventfd(addr, len, fd, /*is_pio=*/false, /*deassign=*/true);
}

}  // namespace hcnode::kvm
