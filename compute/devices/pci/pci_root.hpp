// PciRoot: PCI bus 0 of a VM — a host bridge in slot 0, up to 31 more single-function devices,
// and the legacy configuration mechanism #1 (PCI Local Bus 3.0, 3.2.2.3.2) on ports
// 0xCF8..0xCFF, which is how Linux finds our devices without ACPI (`pci=conf1`, architecture.md).
//
//   0xCF8  CONFIG_ADDRESS, 32-bit only: bit 31 enable, 23:16 bus, 15:11 device, 10:8 function,
//          7:2 dword register. Narrower accesses to 0xCF8..0xCFB do not touch it (hardware passes
//          them on as ordinary I/O; Linux's type-1 probe writes a byte to 0xCFB and expects the
//          dword register to be unaffected).
//   0xCFC..0xCFF  CONFIG_DATA: byte/word/dword window onto the addressed register; an access at
//          0xCFC + n reaches register byte reg + n.
// Only bus 0, function 0 exist; everything else, and a disabled address, reads as all-ones
// (vendor 0xFFFF = no device) and ignores writes.
//
// Wiring (what the VM builder calls, in this order):
//   auto root = std::make_shared<pci::PciRoot>();
//   pio_bus.insert(pci::PciRoot::kConfigPorts, pci::PciRoot::kConfigPortsLen, root);
//   auto slot = root->add_device(transport);          // any number, before or after attach
//   root->attach_bars(mmio_bus);                       // assigns BAR addresses in the MMIO hole,
//                                                      // enables memory decoding, maps BARs
// From then on the guest may move BARs or turn decoding off; each time the root removes the
// BAR's handler from the MMIO bus and inserts it at the new place (BARs that would overlap
// another device are left unmapped and logged — a guest error, not a VMM crash).
//
// Lifetime: the MMIO bus passed to attach_bars() must outlive the root.
// Thread-safety: all methods may be called from any thread; one mutex serializes configuration
// accesses (they are rare and slow anyway). The BAR listener runs under that mutex and must not
// call back into the root.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>

#include "base/result.hpp"
#include "compute/devices/bus.hpp"
#include "compute/devices/pci/bar_allocator.hpp"
#include "compute/devices/pci/pci_device.hpp"

namespace hcnode::compute::pci {

class PciRoot final : public BusDevice {
 public:
  static constexpr uint64_t kConfigPorts = 0xCF8;
  static constexpr uint64_t kConfigPortsLen = 8;  // 0xCF8..0xCFF
  static constexpr uint8_t kSlots = 32;
  static constexpr uint32_t kAddressEnable = 1u << 31;

  // Called after a BAR was moved on the MMIO bus (or unmapped: change.base empty).
  using BarListener = std::function<void(uint8_t slot, const BarChange& change)>;

  PciRoot();

  // Puts a device in the lowest free slot (1..31). ENOSPC when the bus is full. If attach_bars()
  // already ran, the device's BARs are placed and mapped at once.
  Result<uint8_t> add_device(std::shared_ptr<PciDevice> device);

  // Assigns an address to every BAR that has none yet (largest first, size-aligned, from
  // `allocator`), turns on memory decoding, and maps the BARs on `mmio`. Call once.
  Status attach_bars(Bus& mmio, BarAllocator allocator = BarAllocator());

  void set_bar_listener(BarListener listener);

  // Configuration mechanism #1 (offset 0..7 = port 0xCF8..0xCFF).
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Direct configuration access to bus 0, function 0 of a slot, without the port protocol.
  // Absent slots read as all-ones.
  uint32_t config_read(uint8_t slot, uint16_t offset);
  void config_write(uint8_t slot, uint16_t offset, std::span<const uint8_t> data);

  std::shared_ptr<PciDevice> device(uint8_t slot);

 private:
  // Decodes CONFIG_ADDRESS; nullptr when it addresses nothing that exists.
  PciDevice* addressed_device_locked(uint16_t* reg) const;
  void config_write_locked(uint8_t slot, uint16_t offset, std::span<const uint8_t> data);
  void apply_changes_locked(uint8_t slot, const std::vector<BarChange>& changes);
  Status place_bars_locked(std::span<const uint8_t> slots);

  mutable std::mutex mu_;
  uint32_t address_ = 0;                                   // guarded by mu_
  std::array<std::shared_ptr<PciDevice>, kSlots> slots_;  // guarded by mu_
  Bus* mmio_ = nullptr;                                    // guarded by mu_; set by attach_bars
  BarAllocator allocator_;                                 // guarded by mu_
  std::map<unsigned, uint64_t> mapped_;  // slot * 8 + bar -> base on mmio_; guarded by mu_
  BarListener listener_;                 // guarded by mu_
  unsigned conflicts_logged_ = 0;        // guarded by mu_
};

}  // namespace hcnode::compute::pci
