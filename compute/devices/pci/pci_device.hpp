// PciDevice: what a function on hcnode's PCI bus implements (virtio-pci transport, host bridge).
//
// The root (pci_root.hpp) forwards configuration accesses here and, from the BarChanges a write
// returns, moves the BusDevice of each BAR on the MMIO bus. Devices normally keep a
// PciConfigSpace and delegate to it.
//
// Thread-safety: config_read/config_write may be called from any vCPU thread (the root
// serializes them with its own lock, but the device's BAR handlers run concurrently on other
// vCPUs), so an implementation protects its state itself.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "compute/devices/bus.hpp"
#include "compute/devices/pci/config_space.hpp"

namespace hcnode::compute::pci {

class PciDevice {
 public:
  virtual ~PciDevice() = default;

  // Short name for logs ("virtio-rng", "host-bridge").
  virtual std::string name() const = 0;

  // Returns the configuration dword at offset & ~3 (offset < 256).
  virtual uint32_t config_read(uint16_t offset) = 0;

  // A guest write of 1, 2 or 4 bytes at offset (never crossing a dword). Returns the BAR
  // placement changes it caused; the caller moves the BAR handlers on the MMIO bus.
  virtual std::vector<BarChange> config_write(uint16_t offset, std::span<const uint8_t> data) = 0;

  // The memory BARs the function implements (fixed for its lifetime).
  virtual std::vector<BarDescription> bars() const = 0;

  // The handler for accesses to BAR index, inserted on the MMIO bus at the BAR's address (offsets
  // are relative to the BAR start). Null for an index without a BAR.
  virtual std::shared_ptr<BusDevice> bar_handler(uint8_t index) = 0;
};

}  // namespace hcnode::compute::pci
