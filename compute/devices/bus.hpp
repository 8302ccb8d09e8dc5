// Bus: dispatches guest port I/O (PIO) or MMIO accesses to devices by address range.
//
// A vCPU thread that exits with KVM_EXIT_IO / KVM_EXIT_MMIO calls read()/write() on the PIO or
// MMIO bus; the bus finds the device whose range holds the address and calls it with the offset
// inside that range. Accesses to no device read as all-ones and ignore writes (what x86
// hardware does for unclaimed ports), and are counted.
//
// Thread-safety: read()/write() run concurrently on all vCPU threads (shared lock); insert()/
// remove() take the exclusive lock (PCI BAR reprogramming by the guest, device hot-plug).
// Devices protect their own state.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <span>
#include <string>
#include <vector>

#include "base/result.hpp"

namespace hcnode::compute {

class BusDevice {
 public:
  virtual ~BusDevice() = default;
  // offset: from the start of the range the device was inserted at. data.size() is the access
  // width (1, 2, 4 or 8 bytes; larger for some MMIO instructions).
  virtual void read(uint64_t offset, std::span<uint8_t> data) = 0;
  virtual void write(uint64_t offset, std::span<const uint8_t> data) = 0;
};

class Bus {
 public:
  explicit Bus(std::string name) : name_(std::move(name)) {}

  // Claims [base, base + len) for device. Overlapping an existing range is an error (EEXIST).
  Status insert(uint64_t base, uint64_t len, std::shared_ptr<BusDevice> device);
  // Releases the range that starts at base (ENOENT if none).
  Status remove(uint64_t base);

  // Returns false when no device claims addr (reads then return all-ones).
  bool read(uint64_t addr, std::span<uint8_t> data) const;
  bool write(uint64_t addr, std::span<const uint8_t> data) const;

  struct RangeInfo {
    uint64_t base;
    uint64_t len;
  };
  std::vector<RangeInfo> ranges() const;

 private:
  struct Entry {
    uint64_t len;
    std::shared_ptr<BusDevice> device;
  };
  // Finds the device whose range holds addr; caller holds mu_.
  const Entry* find(uint64_t addr, uint64_t* base) const;
  std::shared_ptr<BusDevice> lookup(uint64_t addr, uint64_t* base) const;

  std::string name_;
  mutable std::shared_mutex mu_;
  std::map<uint64_t, Entry> by_base_;  // guarded by mu_
};

}  // namespace hcnode::compute
