// VirtioPciTransport: presents a VirtioDevice to the guest as a modern (virtio 1.x,
// non-transitional) PCI function — virtio 1.2 section 4.1 "Virtio Over PCI Bus".
//
// Identity (4.1.2): vendor 0x1AF4, device 0x1040 + device type, revision 1, subsystem vendor
// 0x1AF4 / subsystem id 0x40 + type (4.1.2.1 asks non-transitional devices for >= 0x40), class
// code by type (network, mass storage, or "other").
//
// One 64-bit memory BAR (BAR0, 32 KiB, not prefetchable: reading ISR has a side effect). Each
// structure sits on its own 4 KiB page so that a future change of one (a bigger device config,
// more queues) never moves another:
//   0x0000  common configuration   (4.1.4.3)  cap COMMON_CFG
//   0x1000  ISR status, 1 byte     (4.1.4.5)  cap ISR_CFG; reading clears it
//   0x2000  device configuration   (4.1.4.6)  cap DEVICE_CFG (only if the device has one)
//   0x3000  queue notify           (4.1.4.4)  cap NOTIFY_CFG, notify_off_multiplier 4: queue i
//                                             is notified at 0x3000 + 4 * i, so each queue gets
//                                             its own address and its own ioeventfd
//   0x4000  MSI-X table, 0x6000 MSI-X PBA (PCI Local Bus 3.0, 6.8.2), vectors = queues + 1
// plus a PCI_CFG capability (4.1.4, "PCI configuration access capability"): the alternative
// access window through configuration space that the spec requires; it forwards 1/2/4-byte
// accesses into BAR0.
//
// Device status (2.1, 3.1.1), driven by the driver's writes to device_status:
//   ACKNOWLEDGE -> DRIVER -> FEATURES_OK (refused, i.e. left clear, if the driver accepted a
//   feature we did not offer or did not accept VIRTIO_F_VERSION_1) -> DRIVER_OK: the transport
//   builds a SplitQueue for every enabled queue, registers one ioeventfd per queue at its notify
//   address, and calls VirtioDevice::activate(). A failure there sets DEVICE_NEEDS_RESET and
//   sends a configuration interrupt. Writing 0 resets: the device stops, ioeventfds are
//   unregistered, queues and feature/vector registers return to their reset values.
//   Writes that would clear a status bit are ignored (2.1.1: only a reset clears it).
//
// Notifications (driver -> device): KVM signals the queue's eventfd directly when the ioeventfd
// is registered. Otherwise (no IoEventRegistrar, registration failed, an access width the
// ioeventfd does not match) the guest's write exits to the VMM and write() signals the same
// eventfd on the vCPU thread, so the device never knows which path was taken.
// Interrupts (device -> driver): VirtioInterrupt::notify_queue(i) sets ISR bit 0 and signals the
// MSI-X vector the driver assigned to queue i (queue_msix_vector); notify_config() uses
// config_msix_vector. MSI-X masking and pending bits are msix.hpp's business. INTx is not
// implemented (interrupt pin 0): drivers must use MSI-X.
//
// Wiring: see VirtioPciTransport::create and pci_root.hpp:
//   auto t = VirtioPciTransport::create(rng_device, guest_memory, interrupt_controller,
//                                       &ioevent_registrar);
//   root->add_device(*t);
//
// Thread-safety: configuration and BAR accesses arrive on any vCPU thread; a mutex serializes
// them (and the device's activate/reset, which run under it). The notify and MSI-X paths do not
// take it. Interrupts from device workers touch only atomics and the MSI-X table's own lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "base/event_fd.hpp"
#include "base/result.hpp"
#include "compute/devices/bus.hpp"
#include "compute/devices/interrupts.hpp"
#include "compute/devices/pci/config_space.hpp"
#include "compute/devices/pci/msix.hpp"
#include "compute/devices/pci/pci_device.hpp"
#include "compute/memory/guest_memory.hpp"
#include "compute/virtio/split_queue.hpp"
#include "compute/virtio/virtio_device.hpp"

namespace hcnode::compute::virtio {

// BAR0 layout (see above).
inline constexpr uint64_t kPciBarSize = 0x8000;
inline constexpr uint64_t kPciCommonCfgOffset = 0x0000;
inline constexpr uint64_t kPciCommonCfgLength = 0x3C;  // through queue_reset (4.1.4.3)
inline constexpr uint64_t kPciIsrOffset = 0x1000;
inline constexpr uint64_t kPciDeviceCfgOffset = 0x2000;
inline constexpr uint64_t kPciDeviceCfgMax = 0x1000;
inline constexpr uint64_t kPciNotifyOffset = 0x3000;
inline constexpr uint32_t kPciNotifyOffMultiplier = 4;
inline constexpr uint64_t kPciMsixTableOffset = 0x4000;
inline constexpr uint64_t kPciMsixPbaOffset = 0x6000;
inline constexpr uint16_t kPciMaxQueues = 256;  // notify page holds 1024; MSI-X table 512
// Width KVM matches for the notify ioeventfd: the driver writes a 16-bit queue index (4.1.5.2).
inline constexpr uint32_t kPciNotifyWidth = 2;

// Virtio PCI capability cfg_type values (4.1.4).
inline constexpr uint8_t kPciCapCommonCfg = 1;
inline constexpr uint8_t kPciCapNotifyCfg = 2;
inline constexpr uint8_t kPciCapIsrCfg = 3;
inline constexpr uint8_t kPciCapDeviceCfg = 4;
inline constexpr uint8_t kPciCapPciCfg = 5;

// Common configuration register offsets (4.1.4.3, struct virtio_pci_common_cfg).
namespace common_cfg {
inline constexpr uint16_t kDeviceFeatureSelect = 0x00;
inline constexpr uint16_t kDeviceFeature = 0x04;
inline constexpr uint16_t kDriverFeatureSelect = 0x08;
inline constexpr uint16_t kDriverFeature = 0x0C;
inline constexpr uint16_t kConfigMsixVector = 0x10;
inline constexpr uint16_t kNumQueues = 0x12;
inline constexpr uint16_t kDeviceStatus = 0x14;
inline constexpr uint16_t kConfigGeneration = 0x15;
inline constexpr uint16_t kQueueSelect = 0x16;
inline constexpr uint16_t kQueueSize = 0x18;
inline constexpr uint16_t kQueueMsixVector = 0x1A;
inline constexpr uint16_t kQueueEnable = 0x1C;
inline constexpr uint16_t kQueueNotifyOff = 0x1E;
inline constexpr uint16_t kQueueDesc = 0x20;
inline constexpr uint16_t kQueueDriver = 0x28;
inline constexpr uint16_t kQueueDevice = 0x30;
inline constexpr uint16_t kQueueNotifyData = 0x38;
inline constexpr uint16_t kQueueReset = 0x3A;
}  // namespace common_cfg

class VirtioPciTransport final : public pci::PciDevice,
                                 public BusDevice,
                                 public std::enable_shared_from_this<VirtioPciTransport> {
  struct Signals;
  // Makes the constructor usable by create() (through make_shared) only.
  struct Token {
    explicit Token() = default;
  };

 public:
  // memory, interrupts and ioevents must outlive the transport; ioevents may be null (every
  // notification then takes the MMIO exit path). Allocates queues + 1 MSI vectors and one
  // eventfd per queue. EINVAL when the device describes no queue, too many, or bad sizes.
  static Result<std::shared_ptr<VirtioPciTransport>> create(std::shared_ptr<VirtioDevice> device,
                                                            const GuestMemory& memory,
                                                            InterruptController& interrupts,
                                                            IoEventRegistrar* ioevents);
  ~VirtioPciTransport() override;

  VirtioPciTransport(Token, std::shared_ptr<VirtioDevice> device, const GuestMemory& memory,
                     IoEventRegistrar* ioevents, std::shared_ptr<Signals> signals,
                     std::shared_ptr<pci::MsixTable> msix,
                     std::vector<std::shared_ptr<EventFd>> notifiers);
  VirtioPciTransport(const VirtioPciTransport&) = delete;
  VirtioPciTransport& operator=(const VirtioPciTransport&) = delete;

  // pci::PciDevice
  std::string name() const override;
  uint32_t config_read(uint16_t offset) override;
  std::vector<pci::BarChange> config_write(uint16_t offset,
                                           std::span<const uint8_t> data) override;
  std::vector<pci::BarDescription> bars() const override;
  std::shared_ptr<BusDevice> bar_handler(uint8_t index) override;

  // BusDevice: accesses to BAR0 (offsets relative to the BAR).
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Introspection (tests, `describe`).
  uint8_t device_status() const;
  bool device_active() const;
  uint64_t driver_features() const;
  std::optional<uint64_t> bar_base() const;
  const pci::MsixTable& msix() const { return *msix_; }
  VirtioDevice& device() { return *device_; }

 private:
  class Interrupt;
  struct QueueRegs {
    uint16_t max_size = 0;
    QueueConfig config;
  };
  struct IoEvent {
    uint64_t addr;
    int fd;
  };

  Status build_config_space();

  void bar_read_locked(uint64_t offset, std::span<uint8_t> data);
  void bar_write_locked(uint64_t offset, std::span<const uint8_t> data);
  void read_common_locked(uint64_t offset, std::span<uint8_t> data) const;
  void write_common_locked(uint64_t offset, std::span<const uint8_t> data);
  void write_status_locked(uint8_t value);
  void notify_from_guest(uint64_t notify_offset);
  uint64_t offered_features() const;
  bool queue_writable_locked() const;
  QueueRegs* selected_queue_locked();
  const QueueRegs* selected_queue_locked() const;

  Status activate_locked();
  void reset_locked();
  void register_ioevents_locked();
  void unregister_ioevents_locked();

  // PCI_CFG window.
  bool pci_cfg_window_locked(uint64_t* offset, size_t* length) const;
  bool touches(uint16_t offset, size_t len, uint16_t field, size_t field_len) const;

  const std::shared_ptr<VirtioDevice> device_;
  const GuestMemory* memory_;
  IoEventRegistrar* ioevents_;
  const std::shared_ptr<Signals> signals_;      // shared with the device's Interrupt
  const std::shared_ptr<pci::MsixTable> msix_;  // its own lock
  const std::vector<std::shared_ptr<EventFd>> notifiers_;  // one per queue, fixed
  const uint16_t num_queues_;
  const uint64_t device_features_;  // as offered by the device, read once

  mutable std::mutex mu_;
  pci::PciConfigSpace config_;                // guarded by mu_
  uint8_t msix_cap_ = 0;                      // capability offsets, fixed after create()
  uint8_t pci_cfg_cap_ = 0;
  std::vector<QueueRegs> queues_;             // guarded by mu_
  uint32_t device_feature_select_ = 0;        // guarded by mu_
  uint32_t driver_feature_select_ = 0;        // guarded by mu_
  uint64_t driver_features_ = 0;              // guarded by mu_
  uint16_t queue_select_ = 0;                 // guarded by mu_
  bool active_ = false;                       // guarded by mu_
  std::optional<uint64_t> bar_base_;          // guarded by mu_: where BAR0 decodes
  std::vector<IoEvent> registered_ioevents_;  // guarded by mu_
  bool ioevent_failure_logged_ = false;       // guarded by mu_
};

}  // namespace hcnode::compute::virtio
