// PciConfigSpace: the 256-byte configuration space of one type-0 PCI function, with the
// read-only / read-write / write-1-to-clear rules of PCI Local Bus 3.0 chapter 6 applied per byte.
//
// What it models:
//   - identity (vendor, device, class, revision, subsystem): read-only;
//   - command (memory decode, bus master, INTx disable, …) read-write; status read-only except
//     for its W1C error bits; cache line size and interrupt line read-write;
//   - up to six memory BARs, 32- or 64-bit (a 64-bit BAR takes two consecutive dwords). Sizing
//     works the way software expects (6.2.5.1): the address bits below the BAR size are
//     hard-wired to zero and the low four flag bits are read-only, so writing all-ones and
//     reading back yields ~(size - 1) | flags;
//   - a capability list: add_capability() appends a structure at the next DWORD-aligned offset
//     in 0x40..0xFF, links the previous `next` pointer (or the capabilities pointer at 0x34) and
//     sets STATUS.CAP_LIST. The owner chooses which capability bytes the guest may write.
//
// BAR placement: a BAR decodes ("is mapped") while COMMAND.MEMORY is set and its address is
// non-zero and does not wrap. Every write that changes whether or where a BAR decodes returns a
// BarChange, so the owner can move the device on the MMIO bus (pci_root.hpp does) and re-register
// ioeventfds (the virtio transport does). The guest usually keeps the addresses the VMM
// programmed, but Linux may reassign them (pci=realloc) or disable decoding while sizing.
//
// Thread-safety: none. The owning PciDevice serializes access (config accesses arrive on any
// vCPU thread).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "base/result.hpp"
#include "compute/devices/pci/registers.hpp"

namespace hcnode::compute::pci {

// Identity of a function; all read-only for the guest.
struct PciIds {
  uint16_t vendor_id = 0;
  uint16_t device_id = 0;
  uint8_t revision = 0;
  uint32_t class_code = 0;  // 24 bits: base class << 16 | subclass << 8 | programming interface
  uint16_t subsystem_vendor_id = 0;
  uint16_t subsystem_id = 0;
};

enum class BarType : uint8_t { kMemory32, kMemory64 };

struct BarDescription {
  uint8_t index = 0;  // 0..5; a 64-bit BAR also uses index + 1
  uint64_t size = 0;  // power of two, >= 16 (6.2.5.1); <= 2 GiB for 32-bit BARs
  BarType type = BarType::kMemory32;
  bool prefetchable = false;
};

// Where BAR `index` decodes after a configuration write: at `base`, or nowhere (nullopt: memory
// decoding off, address 0, or an address that wraps).
struct BarChange {
  uint8_t index = 0;
  uint64_t size = 0;
  std::optional<uint64_t> base;
  bool operator==(const BarChange&) const = default;
};

class PciConfigSpace {
 public:
  explicit PciConfigSpace(const PciIds& ids);

  // Declares a memory BAR. EINVAL for a bad index/size (or a 64-bit BAR at index 5), EEXIST when
  // the slot (or, for 64-bit, its upper half) is taken. Call before the guest runs.
  Status add_bar(const BarDescription& bar);

  // Appends a capability. `bytes` is the whole structure starting with the capability id; its
  // byte 1 (next pointer) is overwritten. `writable` (same length, or empty = none) gives the
  // bits the guest may change; the id and next bytes are always read-only. Returns the offset,
  // or ENOSPC when it does not fit below 0x100, EINVAL for fewer than 2 bytes.
  Result<uint8_t> add_capability(std::span<const uint8_t> bytes,
                                 std::span<const uint8_t> writable = {});

  // Guest access. read() returns the dword containing `offset` (offset & ~3); offsets past the
  // 256-byte space read as zero. write() applies 1..4 bytes at offset with the per-byte masks;
  // bytes past 0xFF are dropped. Returns the BAR placement changes the write caused.
  uint32_t read(uint16_t offset) const;
  std::vector<BarChange> write(uint16_t offset, std::span<const uint8_t> data);

  // Owner access, bypassing the guest write masks (device-owned read-only fields, e.g. the
  // virtio PCI_CFG data window). Bytes past 0xFF are dropped. Does not produce BarChanges: do not
  // use it on the command register or BARs.
  void set_bytes(uint16_t offset, std::span<const uint8_t> data);
  uint8_t read_byte(uint16_t offset) const;
  uint16_t read_word(uint16_t offset) const;
  uint32_t read_dword(uint16_t offset) const;

  uint16_t command() const { return read_word(kRegCommand); }
  bool memory_decoding() const { return (command() & kCommandMemorySpace) != 0; }

  std::vector<BarDescription> bars() const;
  // The address currently programmed in BAR index (flags stripped), 0 when there is no BAR.
  uint64_t bar_address(uint8_t index) const;
  // Where BAR index decodes now (see BarChange).
  std::optional<uint64_t> bar_mapping(uint8_t index) const;

 private:
  void write_byte_masked(uint16_t offset, uint8_t value);
  std::optional<uint64_t> desired_mapping(const BarDescription& bar) const;
  std::vector<BarChange> update_mappings();

  std::array<uint8_t, kConfigSpaceSize> bytes_{};
  std::array<uint8_t, kConfigSpaceSize> writable_{};  // bit set = guest may write it
  std::array<uint8_t, kConfigSpaceSize> w1c_{};       // bit set = guest writes 1 to clear it
  std::array<std::optional<BarDescription>, kBarCount> bars_{};
  std::array<std::optional<uint64_t>, kBarCount> mapped_{};
  uint8_t last_capability_ = 0;  // offset of the last capability, 0 = none yet
  uint16_t next_capability_ = kCapabilitiesStart;
};

}  // namespace hcnode::compute::pci
