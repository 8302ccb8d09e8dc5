// A split virtqueue (virtio 1.2 §2.7) driven by polling, for the probe.
//
// The rings live inside the Virtqueue object, which must be a static
// (constinit) object: the probe identity-maps 0..4 GiB, so an object's
// virtual address is its guest-physical address, which is what the
// device is given. Each ring gets its own 4 KiB page, more than the
// alignment §2.7 asks for (descriptor table 16, available ring 2, used
// ring 4 bytes).
//
// Use (one thread, no interrupts):
//   vq.init(size);                        // before the device sees it
//   dev.setup_queue(0, vq);               // virtio_pci.hpp: addresses, notify
//   vq.add(bufs, n, &head); vq.kick();    // §2.7.13
//   vq.poll(&used, deadline_tsc);         // §2.7.14, TSC deadline, no hang
//
// The driver asks for no interrupts (VIRTQ_AVAIL_F_NO_INTERRUPT) and does
// not negotiate EVENT_IDX: notification suppression is only the device's
// VIRTQ_USED_F_NO_NOTIFY flag (§2.7.10). Indirect descriptor tables
// (§2.7.5.3, VIRTIO_F_INDIRECT_DESC) are built by the caller and added with
// add_indirect(); the driver of the device decides whether it negotiated
// the feature.
//
// Batching: add() several chains, then one kick() publishes them all and
// notifies at most once. try_poll() is the non-blocking form of poll() for
// loops over several queues.
//
// mode=hostile writes malformed chains on purpose through the raw_* API
// (below), which is kept apart from the normal path: add() refuses while a
// raw session is open, and the free list is rebuilt by raw_end().
//
// Pure memory code plus one MMIO write per kick (mmio.hpp), so it also
// builds on the host, where host_test.cpp plays the device.
#pragma once

#include <cstddef>
#include <cstdint>

namespace probe::virtio {

// §2.7.5 The Virtqueue Descriptor Table.
struct VirtqDesc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};
inline constexpr uint16_t kDescFlagNext = 1;   // VIRTQ_DESC_F_NEXT
inline constexpr uint16_t kDescFlagWrite = 2;  // VIRTQ_DESC_F_WRITE (device writes)
inline constexpr uint16_t kDescFlagIndirect = 4;  // VIRTQ_DESC_F_INDIRECT (§2.7.5.3)

// §2.7.6 The Virtqueue Available Ring; §2.7.8 The Virtqueue Used Ring.
inline constexpr uint16_t kAvailFlagNoInterrupt = 1;  // VIRTQ_AVAIL_F_NO_INTERRUPT
inline constexpr uint16_t kUsedFlagNoNotify = 1;      // VIRTQ_USED_F_NO_NOTIFY

class Virtqueue {
  public:
    // Largest queue the probe sets up; the device's queue_size may be
    // bigger (hcnode: 256) or smaller (QEMU virtio-rng: 8).
    static constexpr uint16_t kMaxSize = 256;

    struct Buffer {
        uint64_t addr;      // guest-physical (== virtual in the probe)
        uint32_t len;
        bool device_writes; // VIRTQ_DESC_F_WRITE: the device fills it
    };

    struct Used {
        uint16_t id;   // head of the chain the device returned
        uint32_t len;  // bytes the device wrote into its writable buffers
    };

    enum class PollResult : uint8_t {
        kOk,
        kTimeout,  // nothing in the used ring before the deadline
        kBadId,    // the device returned an id that is not an outstanding head
        kEmpty,    // try_poll(): nothing in the used ring right now
    };

    // Empties the rings for `size` descriptors (a power of two, 1..kMaxSize;
    // §2.7: split queue sizes are powers of two). False for a bad size.
    bool init(uint16_t size);

    // Where the driver notifies (§4.1.5.2: a 16-bit write of the queue
    // index at notify_base + queue_notify_off * notify_off_multiplier).
    void set_notify(uintptr_t notify_addr, uint16_t queue_index);

    uint16_t size() const { return size_; }
    uint16_t free_count() const { return num_free_; }
    uint64_t desc_paddr() const;
    uint64_t avail_paddr() const;
    uint64_t used_paddr() const;

    // Writes the buffers as one descriptor chain (§2.7.13.1) and places its
    // head in the available ring (§2.7.13.2). Not visible to the device
    // until kick(). False (and nothing changed) if n is 0 or fewer than n
    // descriptors are free.
    bool add(const Buffer* bufs, uint16_t n, uint16_t* head);

    // Adds one descriptor with VIRTQ_DESC_F_INDIRECT naming a table of
    // `entries` VirtqDesc at table_paddr (16-byte aligned, filled by the
    // caller, §2.7.5.3.1: chained with NEXT, indices into the table). Only
    // when VIRTIO_F_INDIRECT_DESC was negotiated. False if no descriptor
    // is free or entries is 0.
    bool add_indirect(uint64_t table_paddr, uint32_t entries, uint16_t* head);

    // Publishes the added chains (§2.7.13.3: avail idx after the ring
    // entries, with a barrier) and notifies the device unless it set
    // VIRTQ_USED_F_NO_NOTIFY (§2.7.13.4). Returns true if it notified.
    bool kick();

    // Waits for the next used element (§2.7.14) until rdtsc() reaches
    // deadline_tsc; on kOk frees that chain's descriptors.
    PollResult poll(Used* out, uint64_t deadline_tsc);

    // One look at the used ring: kOk (chain freed), kEmpty or kBadId.
    PollResult try_poll(Used* out);

    // Chains handed to the device and not yet returned.
    uint16_t in_flight() const { return in_flight_; }

    // --- Raw access: mode=hostile only -------------------------------
    // raw_begin() opens a session if the queue is idle (no chain in
    // flight; false otherwise). Then raw_set_desc() writes any descriptor
    // verbatim, raw_publish(head) puts any value in the next available
    // ring slot and publishes it, raw_publish_idx() stores an arbitrary
    // available idx (a corrupt ring), raw_notify() notifies whatever
    // VIRTQ_USED_F_NO_NOTIFY says, raw_poll() consumes one used element
    // without touching the free list. raw_end() closes the session and
    // makes every descriptor free again: only valid when the device holds
    // none of them (it returned the chain, or was reset; after a reset,
    // init() the queue instead).
    bool raw_begin();
    void raw_set_desc(uint16_t index, const VirtqDesc& desc);
    void raw_publish(uint16_t head);
    void raw_publish_idx(uint16_t idx);
    uint16_t raw_avail_idx() const { return avail_shadow_; }
    void raw_notify();
    PollResult raw_poll(Used* out, uint64_t deadline_tsc);
    void raw_end();

    // Counters for reports.
    uint32_t notifies() const { return notifies_; }
    uint32_t notifies_suppressed() const { return notifies_suppressed_; }

  private:
    struct alignas(4096) Rings {
        VirtqDesc desc[kMaxSize];
        alignas(4096) uint16_t avail_flags;  // struct virtq_avail
        uint16_t avail_idx;
        uint16_t avail_ring[kMaxSize];       // (used_event unused: no EVENT_IDX)
        alignas(4096) uint16_t used_flags;   // struct virtq_used
        uint16_t used_idx;
        struct {
            uint32_t id;
            uint32_t len;
        } used_ring[kMaxSize];               // (avail_event unused)
    };
    static_assert(sizeof(VirtqDesc) == 16);
    static_assert(sizeof(Rings) == 3 * 4096);

    void free_chain(uint16_t head);
    PollResult take(Used* out);
    void reset_free_list();

    Rings rings_{};
    uint16_t size_ = 0;
    uint16_t free_head_ = 0;       // first free descriptor (free list via .next)
    uint16_t num_free_ = 0;
    uint16_t avail_shadow_ = 0;    // next avail idx (published by kick())
    uint16_t last_used_ = 0;       // used idx consumed so far
    uint16_t queue_index_ = 0;
    uint16_t in_flight_ = 0;
    bool raw_ = false;             // a raw_begin() session is open
    uintptr_t notify_addr_ = 0;
    bool outstanding_[kMaxSize] = {};  // heads handed to the device
    uint32_t notifies_ = 0;
    uint32_t notifies_suppressed_ = 0;
};

}  // namespace probe::virtio
