// VirtioDevice: what a virtio device (rng, blk, later net and balloon) implements, independent of
// the transport that presents it to the guest (pci_transport.hpp today; virtio-mmio could be
// another). The transport negotiates features, collects the queue configuration the driver
// programs, and on DRIVER_OK hands the device everything it needs in an ActivationContext.
//
//   transport (vCPU threads)                          device
//   ------------------------                          ------
//   device_type(), device_features(), queue_max_sizes()   fixed description
//   read_config()/write_config()                          device-specific config (4.1.4.6)
//   DRIVER_OK   -> activate(ctx)                          starts its worker(s)
//   status = 0  -> reset()                                stops them, forgets the queues
//   VM pause    -> pause() / resume()                     drain for migration
//
// Interrupts go the other way through VirtioInterrupt (ctx.interrupt), which the transport maps
// to MSI-X vectors: any thread may call it.
//
// Thread-safety: read_config/write_config/activate/reset come from vCPU threads, serialized by
// the transport. The device's workers must not call back into the transport except through
// VirtioInterrupt. reset() (and the destructor) must not return before the workers have stopped
// touching guest memory and the queues: the transport may then reuse or drop them.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/event_fd.hpp"
#include "base/result.hpp"
#include "compute/memory/guest_memory.hpp"
#include "compute/virtio/split_queue.hpp"

namespace hcnode::compute::virtio {

// Device -> driver notifications, provided by the transport. Thread-safe, non-blocking.
class VirtioInterrupt {
 public:
  virtual ~VirtioInterrupt() = default;
  // A used-buffer notification for queue `index` (2.3). Call after needs_notification().
  virtual void notify_queue(uint16_t index) = 0;
  // The device-specific configuration changed (2.5): bumps config_generation, then notifies.
  virtual void notify_config() = 0;
  // Something went wrong that the driver must fix by resetting the device (2.1.2): sets
  // DEVICE_NEEDS_RESET and sends a configuration change notification.
  virtual void set_needs_reset() = 0;
};

// One enabled queue, handed to the device on activation.
struct ActiveQueue {
  uint16_t index = 0;
  SplitQueue queue;
  // Signalled when the driver notifies this queue: by KVM (ioeventfd) or, when no ioeventfd is
  // registered, by the transport on the vCPU thread. Non-blocking; the device polls it.
  std::shared_ptr<EventFd> notifier;
};

struct ActivationContext {
  // Guest RAM; outlives the device (the VM owns it).
  const GuestMemory* memory = nullptr;
  // Features the driver accepted (a subset of device_features() plus VIRTIO_F_VERSION_1).
  uint64_t features = 0;
  // The queues the driver enabled, in index order (disabled ones are absent).
  std::vector<ActiveQueue> queues;
  std::shared_ptr<VirtioInterrupt> interrupt;
};

class VirtioDevice {
 public:
  virtual ~VirtioDevice() = default;

  // Device type id (5 "Device Types"): 1 net, 2 block, 4 entropy, ...
  virtual uint32_t device_type() const = 0;
  // For logs and thread names ("rng0", "blk1").
  virtual std::string name() const = 0;

  // Feature bits offered (the transport always adds VIRTIO_F_VERSION_1). Offer
  // kRingFeatures only if the workers honour needs_notification()/enable_notification().
  virtual uint64_t device_features() const = 0;

  // One entry per queue: its maximum size (a power of two <= 32768).
  virtual std::vector<uint16_t> queue_max_sizes() const = 0;

  // Device-specific configuration space (4.1.4.6). Reads past its end return zeros.
  virtual void read_config(uint64_t offset, std::span<uint8_t> data) {
    (void)offset;
    for (auto& b : data) {
      b = 0;
    }
  }
  virtual void write_config(uint64_t offset, std::span<const uint8_t> data) {
    (void)offset;
    (void)data;
  }
  // Size of the device-specific configuration in bytes (0 = none; no DEVICE_CFG capability).
  virtual uint32_t config_size() const { return 0; }

  // Starts the device. An error leaves it inactive; the transport then sets
  // DEVICE_NEEDS_RESET.
  virtual Status activate(ActivationContext context) = 0;

  // Stops the workers and drops the queues (the driver wrote 0 to device_status). Idempotent.
  virtual void reset() = 0;

  // Live migration: pause() stops taking new chains and waits until nothing is in flight (every
  // popped chain is back in the used ring); resume() restarts. Queue state is then stable.
  virtual Status pause() { return {}; }
  virtual Status resume() { return {}; }

  // Saved device state (queue positions, device registers) for migration. TODO(migrate): a
  // versioned byte format per device; until then devices return ENOTSUP.
  virtual Result<std::vector<uint8_t>> save_state() const {
    return fail(ENOTSUP, name() + ": state save not implemented");
  }
};

}  // namespace hcnode::compute::virtio
