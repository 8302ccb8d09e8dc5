// SplitQueue: the device side of one split virtqueue (virtio 1.2 2.7), pure code over
// GuestMemory — no fds, threads or I/O, so unit tests and the fuzzer drive it directly.
//
// Layout in guest memory (2.7, sizes for queue size N):
//   descriptor table  16 * N bytes, 16-byte aligned
//   available ring    flags, idx, ring[N], used_event     (6 + 2N bytes, 2-byte aligned)
//   used ring         flags, idx, ring[N] {id, len}, avail_event   (6 + 8N, 4-byte aligned)
//
// Memory ordering. The guest is another CPU writing the same memory:
//   - pop() reads avail->idx with acquire semantics before it reads ring entries and
//     descriptors (pairs with the driver's write barrier before it publishes idx, 2.7.13);
//   - add_used() writes the used element, then stores used->idx with release semantics (the
//     device "MUST set len prior to updating the used idx", 2.7.8.2);
//   - needs_notification() and enable_notification() put a full fence between our store and the
//     guest-written field we read next, the same pairing Linux's virtio_ring uses with its
//     virtio_mb(), so that neither side can miss the other's update.
// Ring fields are accessed through std::atomic_ref over the host view of guest RAM (aligned:
// the rings are aligned in guest-physical space and guest RAM is page-aligned on the host).
//
// Guest errors:
//   - a broken ring (head index out of range, avail idx more than N ahead of what we consumed)
//     makes pop() return a QueueError; the queue stays broken until it is rebuilt — the device
//     sets DEVICE_NEEDS_RESET (2.1.2);
//   - a malformed chain is returned as ChainError with its head: that chain is consumed and the
//     device completes it (used length 0 or an error status) and carries on.
//
// Thread-safety: one owner thread (the queue's worker). Not copyable across threads while in
// use; save()/restore() are for a paused device.
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string_view>

#include "base/result.hpp"
#include "compute/memory/guest_memory.hpp"
#include "compute/virtio/descriptor_chain.hpp"

namespace hcnode::compute::virtio {

// What the driver programmed through the transport (4.1.4.3: queue_size, queue_desc,
// queue_driver, queue_device, queue_enable).
struct QueueConfig {
  uint16_t size = 0;
  bool ready = false;
  uint64_t desc_table = 0;
  uint64_t avail_ring = 0;  // "driver area"
  uint64_t used_ring = 0;   // "device area"
  bool operator==(const QueueConfig&) const = default;
};

// Everything needed to rebuild a queue on the destination of a live migration.
struct SplitQueueState {
  uint16_t size = 0;
  bool ready = false;
  uint64_t desc = 0;
  uint64_t avail = 0;
  uint64_t used = 0;
  uint16_t next_avail = 0;
  uint16_t next_used = 0;
  bool event_idx_enabled = false;
  bool indirect_enabled = false;
  uint16_t signalled_used = 0;
  bool signalled_used_valid = false;
  bool operator==(const SplitQueueState&) const = default;
};

enum class QueueError : uint8_t {
  kHeadOutOfRange,  // avail ring entry >= queue size
  kAvailIdxJump,    // avail idx moved more than queue size past next_avail
};
std::string_view to_string(QueueError error);

// nullopt: nothing available. A ChainResult: one chain consumed (valid or not).
using PopResult = std::expected<std::optional<ChainResult>, QueueError>;

// 16-bit wrap-around test of 2.7.7.2 / 2.7.10 ("vring_need_event"): true when the entries
// [old_idx, new_idx) cross event_idx, i.e. the other side asked to be notified at one of them.
constexpr bool vring_need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx) {
  return static_cast<uint16_t>(new_idx - event_idx - 1) < static_cast<uint16_t>(new_idx - old_idx);
}

class SplitQueue {
 public:
  // Validates config against 2.7: size a power of two in 1..32768, desc 16-aligned, avail
  // 2-aligned, used 4-aligned, all three areas inside guest RAM. `features` are the negotiated
  // ones (VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC). The memory must outlive the queue and keep
  // its mapping (GuestMemory guarantees that for the life of the VM).
  static Result<SplitQueue> create(const GuestMemory& memory, const QueueConfig& config,
                                   uint64_t features);
  static Result<SplitQueue> restore(const GuestMemory& memory, const SplitQueueState& state);
  SplitQueueState save() const;

  uint16_t size() const { return size_; }
  bool event_idx_enabled() const { return event_idx_; }
  uint16_t next_avail() const { return next_avail_; }
  uint16_t next_used() const { return next_used_; }

  // Takes the next available chain, if any (see the error rules above).
  PopResult pop();
  // Gives back the last popped head (e.g. the backend is full; retry later).
  void undo_pop() { --next_avail_; }

  // Returns chain `head` to the driver with `len` bytes written, and publishes it.
  void add_used(uint16_t head, uint32_t len);

  // After add_used(): must the driver be interrupted? (2.7.7.2) Records the used index it
  // checked, so call it once per batch, then send at most one interrupt.
  bool needs_notification();

  // Driver->device notification suppression (2.7.10). disable: the driver need not notify us
  // (we are polling). enable: ask for a notification for the next buffer; returns true when
  // buffers arrived meanwhile — the caller must pop again instead of going to sleep.
  void disable_notification();
  bool enable_notification();

  // Number of chains the driver has made available that we have not popped yet.
  uint16_t pending() const;

 private:
  SplitQueue() = default;
  uint16_t load_avail_idx() const;
  uint16_t avail_flags() const;
  uint16_t used_event() const;
  void set_used_flags(uint16_t flags);
  void set_avail_event(uint16_t value);

  const GuestMemory* memory_ = nullptr;
  QueueConfig config_;
  uint16_t size_ = 0;
  // Host views of the three areas (validated once in create()).
  std::span<uint8_t> desc_;
  std::span<uint8_t> avail_;
  std::span<uint8_t> used_;
  uint16_t next_avail_ = 0;
  uint16_t next_used_ = 0;
  uint16_t signalled_used_ = 0;
  bool signalled_used_valid_ = false;
  bool event_idx_ = false;
  bool indirect_ = false;
  bool broken_ = false;
  QueueError broken_reason_ = QueueError::kAvailIdxJump;
};

}  // namespace hcnode::compute::virtio
