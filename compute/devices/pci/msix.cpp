#include "compute/devices/pci/msix.hpp"

#include <algorithm>

#include "base/endian.hpp"
#include "compute/devices/pci/registers.hpp"

namespace hcnode::compute::pci {

std::array<uint8_t, kMsixCapabilitySize> msix_capability(const MsixLayout& layout) {
  std::array<uint8_t, kMsixCapabilitySize> cap{};
  const auto control = static_cast<uint16_t>((layout.vectors - 1) & kMsixControlTableSizeMask);
  const uint32_t table = (layout.table_offset & ~7u) | (layout.table_bar & 7u);
  const uint32_t pba = (layout.pba_offset & ~7u) | (layout.pba_bar & 7u);
  // 6.8.2: capability id, next pointer, message control (le16), table and PBA offset/BIR (le32).
  cap[0] = kCapIdMsix;
  cap[1] = 0;
  store_le16(cap.data() + 2, control);
  store_le32(cap.data() + 4, table);
  store_le32(cap.data() + 8, pba);
  return cap;
}

std::array<uint8_t, kMsixCapabilitySize> msix_capability_writable() {
  std::array<uint8_t, kMsixCapabilitySize> mask{};
  store_le16(mask.data() + 2, static_cast<uint16_t>(kMsixControlEnable | kMsixControlFunctionMask));
  return mask;
}

MsixTable::MsixTable(std::vector<std::unique_ptr<MsiVector>> vectors)
    : vectors_(std::move(vectors)) {
  if (vectors_.size() > kMsixMaxVectors) {
    vectors_.resize(kMsixMaxVectors);
  }
  entries_.resize(vectors_.size());
  pba_.resize((vectors_.size() + 63) / 64);
}

namespace {

// DWORD or QWORD, naturally aligned (6.8.2).
bool valid_access(uint64_t offset, size_t len) {
  return (len == 4 || len == 8) && offset % len == 0;
}

}  // namespace

void MsixTable::read_table(uint64_t offset, std::span<uint8_t> data) const {
  std::fill(data.begin(), data.end(), 0);
  if (!valid_access(offset, data.size()) || offset >= msix_table_bytes(size())) {
    return;
  }
  std::lock_guard lock(mu_);
  const Entry& e = entries_[offset / kMsixEntrySize];
  const uint32_t words[4] = {e.address_lo, e.address_hi, e.data, e.control};
  const uint64_t word = (offset % kMsixEntrySize) / 4;
  uint64_t value = words[word];
  if (data.size() == 8) {
    value |= static_cast<uint64_t>(words[word + 1]) << 32;  // aligned QWORD stays in the entry
  }
  store_le(data, value);
}

void MsixTable::write_table(uint64_t offset, std::span<const uint8_t> data) {
  if (!valid_access(offset, data.size()) || offset >= msix_table_bytes(size())) {
    return;
  }
  const uint64_t value = load_le(data);
  std::lock_guard lock(mu_);
  write_dword_locked(offset, static_cast<uint32_t>(value));
  if (data.size() == 8) {
    write_dword_locked(offset + 4, static_cast<uint32_t>(value >> 32));
  }
}

void MsixTable::write_dword_locked(uint64_t offset, uint32_t value) {
  const auto index = static_cast<uint16_t>(offset / kMsixEntrySize);
  Entry& e = entries_[index];
  switch ((offset % kMsixEntrySize) / 4) {
    case 0:
      e.address_lo = value;
      break;
    case 1:
      e.address_hi = value;
      break;
    case 2:
      e.data = value;
      break;
    default: {
      const bool was_masked = vector_masked_locked(index);
      e.control = value & kMsixVectorMasked;  // bits 31:1 are reserved (read as 0)
      configure_if_unmasked_locked(index);
      if (was_masked && !vector_masked_locked(index)) {
        deliver_locked(index);  // only sends if the pending bit is set
      }
      return;
    }
  }
  configure_if_unmasked_locked(index);
}

void MsixTable::configure_if_unmasked_locked(uint16_t index) {
  Entry& e = entries_[index];
  if ((e.control & kMsixVectorMasked) != 0) {
    return;
  }
  const MsiMessage message{(static_cast<uint64_t>(e.address_hi) << 32) | e.address_lo, e.data};
  if (e.configured == message) {
    return;
  }
  if (vectors_[index]->configure(message)) {
    e.configured = message;
  } else {
    e.configured.reset();  // try again on the next write or unmask
  }
}

bool MsixTable::vector_masked_locked(uint16_t index) const {
  return function_masked_ || (entries_[index].control & kMsixVectorMasked) != 0;
}

void MsixTable::deliver_locked(uint16_t index) {
  uint64_t& word = pba_[index / 64];
  const uint64_t bit = uint64_t{1} << (index % 64);
  if ((word & bit) == 0 || !enabled_ || vector_masked_locked(index)) {
    return;
  }
  word &= ~bit;
  if (!entries_[index].configured || !vectors_[index]->trigger()) {
    ++dropped_;
  }
}

void MsixTable::flush_pending_locked() {
  for (uint16_t i = 0; i < size(); ++i) {
    deliver_locked(i);
  }
}

void MsixTable::read_pba(uint64_t offset, std::span<uint8_t> data) const {
  std::fill(data.begin(), data.end(), 0);
  if (!valid_access(offset, data.size()) || offset >= msix_pba_bytes(size())) {
    return;
  }
  std::lock_guard lock(mu_);
  uint64_t value = pba_[offset / 8];
  if (data.size() == 4) {
    value >>= 8 * (offset % 8);
  }
  store_le(data, value);
}

void MsixTable::set_control(uint16_t message_control) {
  std::lock_guard lock(mu_);
  enabled_ = (message_control & kMsixControlEnable) != 0;
  function_masked_ = (message_control & kMsixControlFunctionMask) != 0;
  flush_pending_locked();
}

void MsixTable::notify(uint16_t vector) {
  std::lock_guard lock(mu_);
  if (vector >= size()) {
    return;
  }
  if (!enabled_) {
    ++dropped_;
    return;
  }
  if (vector_masked_locked(vector)) {
    pba_[vector / 64] |= uint64_t{1} << (vector % 64);
    return;
  }
  if (!entries_[vector].configured || !vectors_[vector]->trigger()) {
    ++dropped_;
  }
}

bool MsixTable::enabled() const {
  std::lock_guard lock(mu_);
  return enabled_;
}

bool MsixTable::function_masked() const {
  std::lock_guard lock(mu_);
  return function_masked_;
}

bool MsixTable::masked(uint16_t vector) const {
  std::lock_guard lock(mu_);
  return vector >= size() || (entries_[vector].control & kMsixVectorMasked) != 0;
}

bool MsixTable::pending(uint16_t vector) const {
  std::lock_guard lock(mu_);
  return vector < size() && (pba_[vector / 64] >> (vector % 64)) & 1u;
}

uint64_t MsixTable::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

}  // namespace hcnode::compute::pci
