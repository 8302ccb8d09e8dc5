// How devices raise interrupts, independent of KVM (so device code is unit-testable with fakes).
//
//   IrqLine     a legacy interrupt line into the IOAPIC/PIC (8250 on GSI 4, ...): level or edge.
//               Backed by KVM_IRQ_LINE on the in-kernel irqchip.
//   MsiVector   one MSI/MSI-X vector. configure() records the guest-programmed message
//               (address, data) in the VM's GSI routing table; trigger() injects it. Backed by
//               an irqfd, so a data-plane worker's trigger() is one eventfd write that KVM turns
//               into an interrupt without the VMM's involvement (architecture.md: "interrupts
//               leave by irqfd").
//   InterruptController  hands out lines and vectors for a VM.
//
// Thread-safety: trigger()/set_level() may be called from any thread (vCPU or device worker);
// configure() is called from the vCPU thread that handles the guest's MSI-X table write.
#pragma once

#include <cstdint>
#include <memory>

#include "base/result.hpp"

namespace hcnode::compute {

class IrqLine {
 public:
  virtual ~IrqLine() = default;
  virtual uint32_t gsi() const = 0;
  // Level-triggered lines: high while the device asserts it. Edge: pulse(): high then low.
  virtual Status set_level(bool high) = 0;
  Status pulse() {
    HCN_TRY_STATUS(set_level(true));
    return set_level(false);
  }
};

struct MsiMessage {
  uint64_t address = 0;
  uint32_t data = 0;
  bool operator==(const MsiMessage&) const = default;
};

class MsiVector {
 public:
  virtual ~MsiVector() = default;
  // Installs (or replaces) the message this vector delivers.
  virtual Status configure(const MsiMessage& message) = 0;
  // Delivers the configured message once. Masking is the caller's business (the MSI-X table
  // keeps mask and pending bits; see devices/pci/msix.hpp).
  virtual Status trigger() = 0;
  // The eventfd behind trigger(), for workers that poll it themselves; -1 when none.
  virtual int irqfd() const = 0;
};

class InterruptController {
 public:
  virtual ~InterruptController() = default;
  virtual Result<std::unique_ptr<IrqLine>> legacy_line(uint32_t gsi) = 0;
  virtual Result<std::unique_ptr<MsiVector>> allocate_msi() = 0;
};

// Notification of guest writes to a device address without a VM exit to userspace (ioeventfd):
// the transport asks for an eventfd that KVM signals when the guest writes `addr` (MMIO), and
// the device's worker polls it (architecture.md: "queue notifications arrive by ioeventfd").
class IoEventRegistrar {
 public:
  virtual ~IoEventRegistrar() = default;
  // Registers fd (an eventfd) for writes of `len` bytes at MMIO address addr; KVM completes the
  // guest's write in the kernel. Unregister before the fd or the address goes away.
  virtual Status register_mmio_ioevent(uint64_t addr, uint32_t len, int fd) = 0;
  virtual Status unregister_mmio_ioevent(uint64_t addr, uint32_t len, int fd) = 0;
};

}  // namespace hcnode::compute
