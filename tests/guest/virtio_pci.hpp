// A virtio-pci driver core for the probe: the modern (virtio 1.x,
// non-transitional) PCI transport of virtio 1.2 §4.1, polled, at CPL3.
//
// Finds a function by id on bus 0 (0x1AF4:0x1040+type, §4.1.2), walks its
// vendor-specific capabilities (§4.1.4: common, notify, ISR, device cfg),
// places and enables the BARs they name, and drives the initialization of
// §3.1.1. Device drivers (mode=rng, later virtio-blk) use it like this:
//
//   virtio::Device dev(timeout_ticks);
//   if (!dev.find(virtio::kDeviceIdRng, virtio::kTransitionalIdRng)) fail("device-missing");
//   if (auto* e = dev.map())                  fail(e);  // caps, BARs, command
//   if (auto* e = dev.negotiate(wanted))      fail(e);  // §3.1.1 steps 1-6
//   if (auto* e = dev.setup_queue(0, vq))     fail(e);  // step 7 (§4.1.5.1.3)
//   if (auto* e = dev.driver_ok())            fail(e);  // step 8
//   ... vq.add / vq.kick / vq.poll (virtqueue.hpp) ...
//   dev.read_config(offset, width)                      // §4.1.4.6, generation-checked
//
// Errors are short kebab-case reasons ("features-refused") for the probe's
// `probe: error reason=...` line; nullptr means success. After a failed
// step the caller may set_failed() (§3.1.1: "SHOULD set FAILED").
//
// No interrupts: MSI-X stays disabled in the capability and every vector
// register is written VIRTIO_MSI_NO_VECTOR (§4.1.5.1.2); completions are
// found by polling the used ring with a TSC deadline.
//
// Cost: every common-cfg access is an MMIO exit (~40 us from CPL3 here) and
// every configuration access two port exits; counters in mmio.hpp and
// pci.hpp. Init of one device with one queue: 7 MMIO reads + 21 writes
// (+1 write if the queue is shrunk) and ~24 configuration accesses when
// firmware placed the BARs (~2 ms under hcnode on PVM).
#pragma once

#include <cstdint>

#include "tests/guest/pci.hpp"
#include "tests/guest/virtqueue.hpp"

namespace probe::virtio {

inline constexpr uint16_t kVendorId = 0x1AF4;
// §4.1.2.1: modern device id = 0x1040 + device type (§5).
inline constexpr uint16_t kDeviceIdBlock = 0x1040 + 2;
inline constexpr uint16_t kDeviceIdRng = 0x1040 + 4;
// Transitional ids (§4.1.2.3, legacy + modern interface; QEMU's default on
// `-M pc`). Their modern capabilities work the same way, so find() takes
// them as a second choice.
inline constexpr uint16_t kTransitionalIdBlock = 0x1001;
inline constexpr uint16_t kTransitionalIdRng = 0x1005;

// Device status bits (§2.1).
inline constexpr uint8_t kStatusAcknowledge = 1;
inline constexpr uint8_t kStatusDriver = 2;
inline constexpr uint8_t kStatusDriverOk = 4;
inline constexpr uint8_t kStatusFeaturesOk = 8;
inline constexpr uint8_t kStatusNeedsReset = 0x40;
inline constexpr uint8_t kStatusFailed = 0x80;

// Reserved feature bits (§6).
inline constexpr uint64_t kFeatureIndirectDesc = 1ull << 28;    // VIRTIO_F_INDIRECT_DESC
inline constexpr uint64_t kFeatureEventIdx = 1ull << 29;        // VIRTIO_F_EVENT_IDX
inline constexpr uint64_t kFeatureVersion1 = 1ull << 32;        // VIRTIO_F_VERSION_1
inline constexpr uint64_t kFeatureAccessPlatform = 1ull << 33;  // VIRTIO_F_ACCESS_PLATFORM

inline constexpr uint16_t kNoVector = 0xFFFF;  // VIRTIO_MSI_NO_VECTOR (§4.1.5.1.2)

class Device {
  public:
    // timeout_ticks bounds every wait (reset, queue completion) in TSC ticks.
    constexpr explicit Device(uint64_t timeout_ticks) : timeout_ticks_(timeout_ticks) {}
    void set_timeout_ticks(uint64_t ticks) { timeout_ticks_ = ticks; }

    // Finds the first function 0x1AF4:device_id on bus 0, else (if not 0)
    // 0x1AF4:transitional_id. False if neither is there.
    bool find(uint16_t device_id, uint16_t transitional_id = 0);

    // The index-th function (0-based, bus order) that is 0x1AF4:device_id
    // or 0x1AF4:transitional_id: virtio-blk's disk=N.
    bool find_nth(uint16_t device_id, uint16_t transitional_id, uint32_t index);

    // Walks the capability list (§4.1.4), reads (or, if 0, assigns) the
    // BARs it names, enables memory space + bus master, and maps the
    // common, notify, ISR and (if present) device configuration structures.
    const char* map();

    // §3.1.1 steps 1-6: reset (and wait for status 0, §4.1.4.3.2),
    // ACKNOWLEDGE, DRIVER, read the device features, accept
    // (offered & wanted) | VERSION_1, FEATURES_OK and read it back.
    // `force` bits are accepted even if not offered: a test hook for the
    // refusal path (the device must then leave FEATURES_OK clear).
    const char* negotiate(uint64_t wanted, uint64_t force = 0);

    // Queue count (num_queues) and the device's maximum size for `index`.
    uint16_t num_queues();
    uint16_t queue_max_size(uint16_t index);

    // §4.1.5.1.3: selects queue `index`, sets its size to
    // min(device maximum, Virtqueue::kMaxSize), initializes `vq`, writes
    // the ring addresses (64-bit fields as two 32-bit halves, low first),
    // NO_VECTOR, computes the notify address, enables the queue.
    const char* setup_queue(uint16_t index, Virtqueue& vq);

    // §3.1.1 step 8, then reads status back: DRIVER_OK must be set and
    // DEVICE_NEEDS_RESET clear.
    const char* driver_ok();

    // §3.1.1: tells the device the driver gave up.
    void set_failed();

    // Reads a device-configuration field of 1, 2, 4 or 8 bytes (8: two
    // 32-bit reads, §4.1.3.1) with the config_generation retry loop of
    // §2.5.1. 0 if there is no device configuration or it is out of range.
    uint64_t read_config(uint32_t offset, unsigned width);

    // Reads device_status (one MMIO read).
    uint8_t status();

    pci::Function function() const { return fn_; }
    uint16_t device_id() const { return device_id_; }  // the id find() matched
    unsigned bars_assigned() const { return bars_assigned_; }  // by map(), were 0
    uint64_t device_features() const { return device_features_; }
    uint64_t driver_features() const { return driver_features_; }
    uint64_t common_cfg_paddr() const { return common_; }
    uint64_t isr_paddr() const { return isr_; }  // reading it clears it (§4.1.4.5)
    uint32_t device_cfg_length() const { return device_cfg_len_; }

  private:
    const char* bar_address(uint8_t bar, uint64_t* out);
    void write_status(uint8_t value);

    uint64_t timeout_ticks_;
    pci::Function fn_{};
    uint16_t device_id_ = 0;
    uintptr_t common_ = 0;
    uintptr_t notify_ = 0;
    uint32_t notify_len_ = 0;
    uint32_t notify_multiplier_ = 0;
    uintptr_t isr_ = 0;
    uintptr_t device_cfg_ = 0;
    uint32_t device_cfg_len_ = 0;
    uint8_t status_ = 0;  // what we last wrote
    unsigned bars_assigned_ = 0;
    uint64_t device_features_ = 0;
    uint64_t driver_features_ = 0;
};

}  // namespace probe::virtio
