#include "compute/devices/pci/config_space.hpp"

#include <algorithm>
#include <bit>

#include "base/endian.hpp"

namespace hcnode::compute::pci {

namespace {

// The bytes [offset, offset + len) that lie inside configuration space (fewer, or none, at
// its end: the missing bytes read as 0).
std::span<const uint8_t> inside(const std::array<uint8_t, kConfigSpaceSize>& a, uint16_t offset, size_t len) {
  const size_t start = std::min<size_t>(offset, a.size());
  return std::span(a).subspan(start, std::min(len, a.size() - start));
}

uint16_t bar_register(uint8_t index) { return static_cast<uint16_t>(kRegBar0 + 4 * index); }

}  // namespace

// Registers are little-endian (PCI Local Bus 3.0 6.1); each offset below is a fixed register
// of the type 0 header (or a BAR in it), inside the array.
PciConfigSpace::PciConfigSpace(const PciIds& ids) {
  store_le16(bytes_.data() + kRegVendorId, ids.vendor_id);
  store_le16(bytes_.data() + kRegDeviceId, ids.device_id);
  bytes_[kRegRevisionId] = ids.revision;
  store_le(std::span(bytes_).subspan(kRegClassCode, 3), ids.class_code);  // 24 bits
  bytes_[kRegHeaderType] = 0x00;  // type 0, single function (bit 7 clear)
  store_le16(bytes_.data() + kRegSubsystemVendorId, ids.subsystem_vendor_id);
  store_le16(bytes_.data() + kRegSubsystemId, ids.subsystem_id);
  bytes_[kRegInterruptPin] = 0;  // no INTx: devices interrupt through MSI-X only

  // Guest-writable bits. I/O space enable stays 0: no function here has an I/O BAR (6.2.2
  // allows hard-wiring bits of resources the function does not have).
  store_le16(writable_.data() + kRegCommand,
             kCommandMemorySpace | kCommandBusMaster | kCommandParityError | kCommandSerr |
                 kCommandInterruptDisable);
  store_le16(w1c_.data() + kRegStatus, kStatusW1cMask);
  writable_[kRegCacheLineSize] = 0xFF;
  writable_[kRegInterruptLine] = 0xFF;  // scratch register for the OS (6.2.4)
}

Status PciConfigSpace::add_bar(const BarDescription& bar) {
  const bool is64 = bar.type == BarType::kMemory64;
  if (bar.index >= kBarCount || (is64 && bar.index + 1 >= static_cast<int>(kBarCount))) {
    return fail(EINVAL, "pci: BAR index out of range");
  }
  if (!std::has_single_bit(bar.size) || bar.size < 16 || (!is64 && bar.size > (1ull << 31))) {
    return fail(EINVAL, "pci: BAR size must be a power of two >= 16 (<= 2 GiB for 32-bit)");
  }
  // Each BAR slot may be claimed once, including the upper dword of a 64-bit BAR.
  for (const auto& existing : bars_) {
    if (!existing) {
      continue;
    }
    const unsigned lo = existing->index;
    const unsigned hi = existing->type == BarType::kMemory64 ? lo + 1 : lo;
    const unsigned new_hi = is64 ? bar.index + 1u : bar.index;
    if (bar.index <= hi && new_hi >= lo) {
      return fail(EEXIST, "pci: BAR slot already used");
    }
  }
  bars_[bar.index] = bar;

  const uint32_t flags = (is64 ? kBarMemType64 : 0u) | (bar.prefetchable ? kBarPrefetchable : 0u);
  const uint64_t address_mask = ~(bar.size - 1);
  const uint16_t reg = bar_register(bar.index);
  store_le32(bytes_.data() + reg, flags);
  store_le32(writable_.data() + reg, static_cast<uint32_t>(address_mask) & ~kBarMemFlagsMask);
  if (is64) {
    store_le32(bytes_.data() + reg + 4, 0);
    store_le32(writable_.data() + reg + 4, static_cast<uint32_t>(address_mask >> 32));
  }
  return {};
}

Result<uint8_t> PciConfigSpace::add_capability(std::span<const uint8_t> bytes,
                                               std::span<const uint8_t> writable) {
  if (bytes.size() < 2 || (!writable.empty() && writable.size() != bytes.size())) {
    return fail(EINVAL, "pci: malformed capability");
  }
  const uint16_t offset = next_capability_;
  if (offset + bytes.size() > kConfigSpaceSize) {
    return fail(ENOSPC, "pci: configuration space full");
  }
  for (size_t i = 0; i < bytes.size(); ++i) {
    bytes_[offset + i] = bytes[i];
    writable_[offset + i] = (i >= 2 && !writable.empty()) ? writable[i] : 0;
  }
  bytes_[offset + 1] = 0;  // end of list until another capability follows
  if (last_capability_ == 0) {
    bytes_[kRegCapabilitiesPointer] = static_cast<uint8_t>(offset);
  } else {
    bytes_[last_capability_ + 1] = static_cast<uint8_t>(offset);
  }
  bytes_[kRegStatus] |= kStatusCapabilitiesList;
  last_capability_ = static_cast<uint8_t>(offset);
  next_capability_ = static_cast<uint16_t>((offset + bytes.size() + 3) & ~size_t{3});
  return static_cast<uint8_t>(offset);
}

uint32_t PciConfigSpace::read(uint16_t offset) const {
  const uint16_t aligned = offset & ~uint16_t{3};
  if (aligned >= kConfigSpaceSize) {
    return 0;
  }
  return read_dword(aligned);
}

void PciConfigSpace::write_byte_masked(uint16_t offset, uint8_t value) {
  const uint8_t wmask = writable_[offset];
  uint8_t next = static_cast<uint8_t>((bytes_[offset] & ~wmask) | (value & wmask));
  next = static_cast<uint8_t>(next & ~(value & w1c_[offset]));
  bytes_[offset] = next;
}

std::vector<BarChange> PciConfigSpace::write(uint16_t offset, std::span<const uint8_t> data) {
  bool placement_may_change = false;
  for (size_t i = 0; i < data.size(); ++i) {
    const size_t at = size_t{offset} + i;
    if (at >= kConfigSpaceSize) {
      break;
    }
    const auto off = static_cast<uint16_t>(at);
    write_byte_masked(off, data[i]);
    if ((off >= kRegCommand && off < kRegCommand + 2) ||
        (off >= kRegBar0 && off < kRegBar0 + 4 * kBarCount)) {
      placement_may_change = true;
    }
  }
  if (!placement_may_change) {
    return {};
  }
  return update_mappings();
}

void PciConfigSpace::set_bytes(uint16_t offset, std::span<const uint8_t> data) {
  for (size_t i = 0; i < data.size() && size_t{offset} + i < kConfigSpaceSize; ++i) {
    bytes_[offset + i] = data[i];
  }
}

uint8_t PciConfigSpace::read_byte(uint16_t offset) const {
  return offset < kConfigSpaceSize ? bytes_[offset] : 0;
}

uint16_t PciConfigSpace::read_word(uint16_t offset) const {
  return static_cast<uint16_t>(load_le(inside(bytes_, offset, 2)));
}

uint32_t PciConfigSpace::read_dword(uint16_t offset) const {
  return static_cast<uint32_t>(load_le(inside(bytes_, offset, 4)));
}

std::vector<BarDescription> PciConfigSpace::bars() const {
  std::vector<BarDescription> out;
  for (const auto& bar : bars_) {
    if (bar) {
      out.push_back(*bar);
    }
  }
  return out;
}

uint64_t PciConfigSpace::bar_address(uint8_t index) const {
  if (index >= kBarCount || !bars_[index]) {
    return 0;
  }
  const uint16_t reg = bar_register(index);
  uint64_t address = read_dword(reg) & ~kBarMemFlagsMask;
  if (bars_[index]->type == BarType::kMemory64) {
    address |= static_cast<uint64_t>(read_dword(reg + 4)) << 32;
  }
  return address;
}

std::optional<uint64_t> PciConfigSpace::bar_mapping(uint8_t index) const {
  return index < kBarCount ? mapped_[index] : std::nullopt;
}

std::optional<uint64_t> PciConfigSpace::desired_mapping(const BarDescription& bar) const {
  if (!memory_decoding()) {
    return std::nullopt;
  }
  const uint64_t address = bar_address(bar.index);
  // Address 0 is where an unprogrammed BAR sits; an address whose range wraps past 2^64 cannot
  // decode. (Sizing with decoding left on yields ~(size-1): a valid, if odd, placement; the bus
  // refuses it if it collides with something.)
  if (address == 0 || address > ~uint64_t{0} - (bar.size - 1)) {
    return std::nullopt;
  }
  return address;
}

std::vector<BarChange> PciConfigSpace::update_mappings() {
  std::vector<BarChange> changes;
  for (const auto& bar : bars_) {
    if (!bar) {
      continue;
    }
    const auto want = desired_mapping(*bar);
    if (want != mapped_[bar->index]) {
      mapped_[bar->index] = want;
      changes.push_back(BarChange{bar->index, bar->size, want});
    }
  }
  return changes;
}

}  // namespace hcnode::compute::pci
