#include "compute/kvm/kvm_vm.hpp"

#include <sys/ioctl.h>

#include <algorithm>

#include "base/mmap_region.hpp"
#include "compute/kvm/kvm_abi.hpp"

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
  config.flags = KVM_PIT_SPEAKER_DUMMY;
  if (::ioctl(fd_.get(), KVM_CREATE_PIT2, &config) < 0) {
    return fail(from_errno("KVM_CREATE_PIT2"));
  }
  return {};
}

Status KvmVm::irq_line(uint32_t gsi, bool level) {
  kvm_irq_level irq{};
  irq.irq = gsi;
  irq.level = level ? 1 : 0;
  if (::ioctl(fd_.get(), KVM_IRQ_LINE, &irq) < 0) {
    return fail(from_errno("KVM_IRQ_LINE gsi " + std::to_string(gsi)));
  }
  return {};
}

Status KvmVm::set_gsi_routing(const std::vector<kvm_irq_routing_entry>& entries) {
  FlexBuffer<IrqRoutingHeader, kvm_irq_routing_entry> buf(entries.size());
  buf.header()->nr = static_cast<uint32_t>(entries.size());
  buf.header()->flags = 0;
  std::copy(entries.begin(), entries.end(), buf.entries());
  if (::ioctl(fd_.get(), kSetGsiRouting, buf.data()) < 0) {
    return fail(from_errno("KVM_SET_GSI_ROUTING (" + std::to_string(entries.size()) + " entries)"));
  }
  return {};
}

Status KvmVm::irqfd(int eventfd, uint32_t gsi, bool deassign) {
  kvm_irqfd req{};
  req.fd = static_cast<uint32_t>(eventfd);
  req.gsi = gsi;
  req.flags = deassign ? KVM_IRQFD_FLAG_DEASSIGN : 0;
  if (::ioctl(fd_.get(), KVM_IRQFD, &req) < 0) {
    return fail(from_errno("KVM_IRQFD gsi " + std::to_string(gsi)));
  }
  return {};
}

Status KvmVm::ioeventfd(uint64_t addr, uint32_t len, int eventfd, bool is_pio, bool deassign) {
  kvm_ioeventfd req{};
  req.addr = addr;
  req.len = len;
  req.fd = eventfd;
  req.flags = (is_pio ? KVM_IOEVENTFD_FLAG_PIO : 0) | (deassign ? KVM_IOEVENTFD_FLAG_DEASSIGN : 0);
  if (::ioctl(fd_.get(), KVM_IOEVENTFD, &req) < 0) {
    return fail(from_errno("KVM_IOEVENTFD addr " + std::to_string(addr)));
  }
  return {};
}

Result<kvm_clock_data> KvmVm::get_clock() const {
  kvm_clock_data clock{};
  if (::ioctl(fd_.get(), KVM_GET_CLOCK, &clock) < 0) {
    return fail(from_errno("KVM_GET_CLOCK"));
  }
  return clock;
}

Status KvmVm::set_clock(const kvm_clock_data& clock) {
  kvm_clock_data copy = clock;
  if (::ioctl(fd_.get(), KVM_SET_CLOCK, &copy) < 0) {
    return fail(from_errno("KVM_SET_CLOCK"));
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
