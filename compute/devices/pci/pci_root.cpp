#include "compute/devices/pci/pci_root.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "base/endian.hpp"

namespace hcnode::compute::pci {

namespace {

// The host bridge at 00:00.0. Linux's type-1 probe (arch/x86/pci/direct.c, pci_sanity_check)
// accepts mechanism #1 only if some function on bus 0 has class "host bridge" or an Intel or
// Compaq vendor id, so this function has both. Device id 0x0D57 is not a real chipset's: no
// Linux chipset quirk or driver binds to it (cloud-hypervisor exposes the same id for the same
// reason), so the guest sees a bridge with no behaviour to emulate.
class HostBridge final : public PciDevice {
 public:
  HostBridge() : config_(PciIds{0x8086, 0x0D57, 0, 0x06'00'00, 0, 0}) {}

  std::string name() const override { return "host-bridge"; }
  uint32_t config_read(uint16_t offset) override { return config_.read(offset); }
  std::vector<BarChange> config_write(uint16_t offset, std::span<const uint8_t> data) override {
    return config_.write(offset, data);
  }
  std::vector<BarDescription> bars() const override { return {}; }
  std::shared_ptr<BusDevice> bar_handler(uint8_t) override { return nullptr; }

 private:
  PciConfigSpace config_;  // guarded by the root's mutex (its only caller)
};

constexpr unsigned map_key(uint8_t slot, uint8_t bar) { return slot * 8u + bar; }

}  // namespace

PciRoot::PciRoot() { slots_[0] = std::make_shared<HostBridge>(); }

Result<uint8_t> PciRoot::add_device(std::shared_ptr<PciDevice> device) {
  if (!device) {
    return fail(EINVAL, "pci: null device");
  }
  std::lock_guard lock(mu_);
  for (uint8_t slot = 1; slot < kSlots; ++slot) {
    if (!slots_[slot]) {
      slots_[slot] = std::move(device);
      if (mmio_ != nullptr) {
        const uint8_t one[] = {slot};
        HCN_TRY_STATUS(place_bars_locked(one));
      }
      return slot;
    }
  }
  return fail(ENOSPC, "pci: bus 0 is full (32 slots)");
}

Status PciRoot::attach_bars(Bus& mmio, BarAllocator allocator) {
  std::lock_guard lock(mu_);
  if (mmio_ != nullptr) {
    return fail(EALREADY, "pci: BARs already attached");
  }
  mmio_ = &mmio;
  allocator_ = allocator;
  std::vector<uint8_t> present;
  for (uint8_t slot = 0; slot < kSlots; ++slot) {
    if (slots_[slot]) {
      present.push_back(slot);
    }
  }
  return place_bars_locked(present);
}

Status PciRoot::place_bars_locked(std::span<const uint8_t> slots) {
  struct Pending {
    uint8_t slot;
    BarDescription bar;
  };
  std::vector<Pending> pending;
  for (uint8_t slot : slots) {
    for (const auto& bar : slots_[slot]->bars()) {
      pending.push_back({slot, bar});
    }
  }
  // Largest first: with size-aligned bump allocation this leaves no holes.
  std::stable_sort(pending.begin(), pending.end(),
                   [](const Pending& a, const Pending& b) { return a.bar.size > b.bar.size; });
  for (const auto& p : pending) {
    const auto reg = static_cast<uint16_t>(kRegBar0 + 4 * p.bar.index);
    PciDevice& dev = *slots_[p.slot];
    uint64_t current = dev.config_read(reg) & ~kBarMemFlagsMask;
    if (p.bar.type == BarType::kMemory64) {
      current |= static_cast<uint64_t>(dev.config_read(reg + 4)) << 32;
    }
    if (current != 0) {
      continue;  // already placed (e.g. restored state): keep it
    }
    const uint64_t base = HCN_TRY(allocator_.allocate(p.bar.size));
    // Program the BAR the way firmware does: through configuration writes, so the device sees
    // exactly what a guest reassignment would do.
    uint8_t lo_bytes[4];
    store_le32(lo_bytes, static_cast<uint32_t>(base));
    config_write_locked(p.slot, reg, lo_bytes);
    if (p.bar.type == BarType::kMemory64) {
      uint8_t hi_bytes[4];
      store_le32(hi_bytes, static_cast<uint32_t>(base >> 32));
      config_write_locked(p.slot, static_cast<uint16_t>(reg + 4), hi_bytes);
    }
  }
  // Enable memory decoding on every device that has BARs (firmware leaves it on for the OS).
  for (uint8_t slot : slots) {
    if (slots_[slot]->bars().empty()) {
      continue;
    }
    const auto command =
        static_cast<uint16_t>(slots_[slot]->config_read(kRegCommand) | kCommandMemorySpace);
    uint8_t bytes[2];
    store_le16(bytes, command);
    config_write_locked(slot, kRegCommand, bytes);
  }
  return {};
}

void PciRoot::set_bar_listener(BarListener listener) {
  std::lock_guard lock(mu_);
  listener_ = std::move(listener);
}

std::shared_ptr<PciDevice> PciRoot::device(uint8_t slot) {
  std::lock_guard lock(mu_);
  return slot < kSlots ? slots_[slot] : nullptr;
}

PciDevice* PciRoot::addressed_device_locked(uint16_t* reg) const {
  if ((address_ & kAddressEnable) == 0) {
    return nullptr;
  }
  const uint32_t bus = (address_ >> 16) & 0xFF;
  const uint32_t slot = (address_ >> 11) & 0x1F;
  const uint32_t function = (address_ >> 8) & 0x7;
  if (bus != 0 || function != 0) {
    return nullptr;
  }
  *reg = static_cast<uint16_t>(address_ & 0xFC);
  return slots_[slot].get();
}

void PciRoot::read(uint64_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0xFF);
  std::lock_guard lock(mu_);
  if (offset == 0 && data.size() == 4) {
    store_le32(data.data(), address_);
    return;
  }
  if (offset < 4 || offset >= kConfigPortsLen || offset - 4 + data.size() > 4) {
    return;
  }
  uint16_t reg = 0;
  PciDevice* dev = addressed_device_locked(&reg);
  if (dev == nullptr) {
    return;
  }
  // CONFIG_DATA's bytes are the register's bytes (a byte or word access at 0xCFD..0xCFF
  // reads the upper ones).
  const uint32_t value = dev->config_read(reg);
  store_le(data, value >> (8 * (offset - 4)));
}

void PciRoot::write(uint64_t offset, std::span<const uint8_t> data) {
  std::lock_guard lock(mu_);
  if (offset == 0 && data.size() == 4) {
    const uint32_t value = load_le32(data.data());
    // Bits 30:24 are reserved and 1:0 select type-0/1 translation; neither is ours to keep.
    address_ = value & 0x80FF'FFFCu;
    return;
  }
  if (offset < 4 || offset >= kConfigPortsLen || offset - 4 + data.size() > 4) {
    return;
  }
  uint16_t reg = 0;
  if (addressed_device_locked(&reg) == nullptr) {
    return;
  }
  const auto slot = static_cast<uint8_t>((address_ >> 11) & 0x1F);
  config_write_locked(slot, static_cast<uint16_t>(reg + (offset - 4)), data);
}

uint32_t PciRoot::config_read(uint8_t slot, uint16_t offset) {
  std::lock_guard lock(mu_);
  if (slot >= kSlots || !slots_[slot] || offset >= kConfigSpaceSize) {
    return kAbsentDword;
  }
  return slots_[slot]->config_read(offset & ~uint16_t{3});
}

void PciRoot::config_write(uint8_t slot, uint16_t offset, std::span<const uint8_t> data) {
  std::lock_guard lock(mu_);
  config_write_locked(slot, offset, data);
}

void PciRoot::config_write_locked(uint8_t slot, uint16_t offset, std::span<const uint8_t> data) {
  if (slot >= kSlots || !slots_[slot] || offset >= kConfigSpaceSize || data.empty() ||
      data.size() > 4 || (offset & 3u) + data.size() > 4) {
    return;
  }
  apply_changes_locked(slot, slots_[slot]->config_write(offset, data));
}

void PciRoot::apply_changes_locked(uint8_t slot, const std::vector<BarChange>& changes) {
  for (const auto& change : changes) {
    const unsigned key = map_key(slot, change.index);
    if (mmio_ != nullptr) {
      if (auto it = mapped_.find(key); it != mapped_.end()) {
        (void)mmio_->remove(it->second);  // we inserted it, so it is there
        mapped_.erase(it);
      }
      if (change.base) {
        auto handler = slots_[slot]->bar_handler(change.index);
        Status inserted = handler ? mmio_->insert(*change.base, change.size, std::move(handler))
                                  : Status(fail(ENODEV, "no BAR handler"));
        if (inserted) {
          mapped_[key] = *change.base;
        } else if (conflicts_logged_ < 16) {
          // A guest placing a BAR over another device gets an unmapped BAR, as on hardware
          // where such a decode conflict is undefined.
          ++conflicts_logged_;
          spdlog::warn("pci {:02x}.0 ({}): BAR{} at {:#x} (+{:#x}) left unmapped: {}", slot,
                       slots_[slot]->name(), change.index, *change.base, change.size,
                       inserted.error().message());
        }
      }
    }
    if (listener_) {
      listener_(slot, change);
    }
  }
}

}  // namespace hcnode::compute::pci
