// MSI-X (PCI Local Bus 3.0, 6.8.2): the capability structure in configuration space, and the
// vector table and pending-bit array (PBA) that live in a memory BAR.
//
//   capability (12 bytes): id 0x11 | next | message control (15 enable, 14 function mask,
//       10:0 table size N-1, read-only) | table offset/BIR | PBA offset/BIR.
//   table: N entries of 16 bytes: message address low, high, data, vector control (bit 0 mask).
//   PBA:   one pending bit per entry, in 64-bit words; read-only for software.
//
// Delivery rules implemented by notify(vector):
//   MSI-X disabled                      -> dropped (no INTx fallback in hcnode)
//   function masked or entry masked     -> the entry's pending bit is set
//   otherwise                           -> MsiVector::trigger()
// and when an entry (or the whole function) becomes unmasked with its pending bit set, the bit
// is cleared and the message is sent (6.8.2, "Per-vector Masking and Function Masking").
//
// The guest-programmed message reaches the MsiVector (configure(): a GSI route in KVM) when an
// entry is unmasked, or when an unmasked entry is rewritten. Drivers write address/data while
// the entry is masked and unmask last (the MSI-X chapter advises it); configuring only unmasked
// entries keeps half-written messages out of the routing table.
//
// Table accesses must be DWORD or QWORD sized and naturally aligned (6.8.2: "software must use
// aligned full DWORD or aligned full QWORD transactions"); anything else reads as 0 and is
// ignored on write. Offsets past the table read as 0.
//
// Thread-safety: every method may be called from any thread. notify() runs on device worker
// threads while vCPU threads access the table and the capability, so one mutex guards all state;
// MsiVector::configure()/trigger() are called under it (they are one ioctl / one eventfd write
// and never call back).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "compute/devices/interrupts.hpp"

namespace hcnode::compute::pci {

inline constexpr uint16_t kMsixMaxVectors = 2048;
inline constexpr uint64_t kMsixEntrySize = 16;
inline constexpr uint16_t kMsixControlEnable = 1u << 15;
inline constexpr uint16_t kMsixControlFunctionMask = 1u << 14;
inline constexpr uint16_t kMsixControlTableSizeMask = 0x07FF;
inline constexpr uint32_t kMsixVectorMasked = 1u;
// Offset of message control inside the capability.
inline constexpr uint16_t kMsixCapControlOffset = 2;
inline constexpr size_t kMsixCapabilitySize = 12;

struct MsixLayout {
  uint16_t vectors = 0;     // N, 1..2048
  uint8_t table_bar = 0;    // BIR
  uint32_t table_offset = 0;  // within the BAR, 8-byte aligned
  uint8_t pba_bar = 0;
  uint32_t pba_offset = 0;    // 8-byte aligned
};

// The capability bytes (id, next = 0, control, table, PBA) and the mask of bits the guest may
// write (enable and function mask only), for PciConfigSpace::add_capability.
std::array<uint8_t, kMsixCapabilitySize> msix_capability(const MsixLayout& layout);
std::array<uint8_t, kMsixCapabilitySize> msix_capability_writable();

// Bytes of BAR space the table and PBA need for n vectors.
constexpr uint64_t msix_table_bytes(uint16_t n) { return uint64_t{n} * kMsixEntrySize; }
constexpr uint64_t msix_pba_bytes(uint16_t n) { return ((uint64_t{n} + 63) / 64) * 8; }

class MsixTable {
 public:
  // One MsiVector per table entry (1..2048 of them); the table owns them.
  explicit MsixTable(std::vector<std::unique_ptr<MsiVector>> vectors);

  uint16_t size() const { return static_cast<uint16_t>(vectors_.size()); }

  // Guest accesses, offsets relative to the start of the table / PBA.
  void read_table(uint64_t offset, std::span<uint8_t> data) const;
  void write_table(uint64_t offset, std::span<const uint8_t> data);
  void read_pba(uint64_t offset, std::span<uint8_t> data) const;

  // The message control word after a configuration write to the capability.
  void set_control(uint16_t message_control);

  // Device side: signal vector (see the delivery rules above). Out-of-range vectors (including
  // virtio's NO_VECTOR 0xFFFF) are ignored.
  void notify(uint16_t vector);

  bool enabled() const;
  bool function_masked() const;
  bool masked(uint16_t vector) const;
  bool pending(uint16_t vector) const;

  // Messages that could not be delivered because MSI-X was off, and trigger() failures.
  uint64_t dropped() const;

 private:
  struct Entry {
    uint32_t address_lo = 0;
    uint32_t address_hi = 0;
    uint32_t data = 0;
    uint32_t control = kMsixVectorMasked;  // entries come out of reset masked (6.8.2)
    std::optional<MsiMessage> configured;  // what the MsiVector currently routes
  };

  void write_dword_locked(uint64_t offset, uint32_t value);
  void configure_if_unmasked_locked(uint16_t index);
  void deliver_locked(uint16_t index);
  void flush_pending_locked();
  bool vector_masked_locked(uint16_t index) const;

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<MsiVector>> vectors_;  // fixed after construction
  std::vector<Entry> entries_;                       // guarded by mu_
  std::vector<uint64_t> pba_;                        // guarded by mu_
  bool enabled_ = false;                             // guarded by mu_
  bool function_masked_ = false;                     // guarded by mu_
  uint64_t dropped_ = 0;                             // guarded by mu_
};

}  // namespace hcnode::compute::pci
