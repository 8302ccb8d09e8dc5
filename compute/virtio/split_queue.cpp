#include "compute/virtio/split_queue.hpp"

#include <atomic>
#include <bit>
#include <cstring>

#include "compute/virtio/constants.hpp"

namespace hcnode::compute::virtio {

std::string_view to_string(QueueError error) {
  switch (error) {
    case QueueError::kHeadOutOfRange:
      return "available ring entry out of range";
    case QueueError::kAvailIdxJump:
      return "available index moved more than the queue size";
  }
  return "unknown queue error";
}

namespace {

// Offsets inside the rings (2.7.6, 2.7.8).
constexpr size_t kRingFlags = 0;
constexpr size_t kRingIdx = 2;
constexpr size_t kRingEntries = 4;
constexpr size_t kUsedElemSize = 8;

constexpr uint64_t desc_bytes(uint16_t n) { return 16ull * n; }
constexpr uint64_t avail_bytes(uint16_t n) { return 6ull + 2ull * n; }
constexpr uint64_t used_bytes(uint16_t n) { return 6ull + 8ull * n; }

// SAFETY: `area` is a host view of guest RAM validated by SplitQueue::create(), `offset` + 2 is
// inside it and the address is 2-byte aligned (create() checks the area alignment; offsets are
// even). The guest writes these fields concurrently, hence atomic access.
uint16_t load16(std::span<uint8_t> area, size_t offset, std::memory_order order) {
  auto* field = reinterpret_cast<uint16_t*>(area.data() + offset);
  return std::atomic_ref<uint16_t>(*field).load(order);
}

// SAFETY: as load16.
void store16(std::span<uint8_t> area, size_t offset, uint16_t value, std::memory_order order) {
  auto* field = reinterpret_cast<uint16_t*>(area.data() + offset);
  std::atomic_ref<uint16_t>(*field).store(value, order);
}

}  // namespace

Result<SplitQueue> SplitQueue::create(const GuestMemory& memory, const QueueConfig& config,
                                      uint64_t features) {
  const uint16_t n = config.size;
  if (n == 0 || n > kMaxQueueSize || !std::has_single_bit(n)) {
    return fail(EINVAL, "virtqueue: size must be a power of two in 1..32768");
  }
  // 2.7 "Alignment requirements" table.
  if (config.desc_table % 16 != 0 || config.avail_ring % 2 != 0 || config.used_ring % 4 != 0) {
    return fail(EINVAL, "virtqueue: ring address misaligned");
  }
  SplitQueue q;
  q.memory_ = &memory;
  q.config_ = config;
  q.size_ = n;
  q.desc_ = HCN_TRY(memory.slice(config.desc_table, desc_bytes(n)));
  q.avail_ = HCN_TRY(memory.slice(config.avail_ring, avail_bytes(n)));
  q.used_ = HCN_TRY(memory.slice(config.used_ring, used_bytes(n)));
  // atomic_ref needs natural alignment of the host address too; guest RAM is page-aligned on the
  // host, so this only fails for an exotic GuestMemory.
  if (reinterpret_cast<uintptr_t>(q.avail_.data()) % 2 != 0 ||
      reinterpret_cast<uintptr_t>(q.used_.data()) % 4 != 0) {
    return fail(EINVAL, "virtqueue: host view of the rings misaligned");
  }
  q.event_idx_ = (features & kFeatureEventIdx) != 0;
  q.indirect_ = (features & kFeatureIndirectDesc) != 0;
  return q;
}

Result<SplitQueue> SplitQueue::restore(const GuestMemory& memory, const SplitQueueState& state) {
  uint64_t features = 0;
  if (state.event_idx_enabled) {
    features |= kFeatureEventIdx;
  }
  if (state.indirect_enabled) {
    features |= kFeatureIndirectDesc;
  }
  SplitQueue q = HCN_TRY(create(
      memory, QueueConfig{state.size, state.ready, state.desc, state.avail, state.used}, features));
  q.next_avail_ = state.next_avail;
  q.next_used_ = state.next_used;
  q.signalled_used_ = state.signalled_used;
  q.signalled_used_valid_ = state.signalled_used_valid;
  return q;
}

SplitQueueState SplitQueue::save() const {
  return SplitQueueState{size_,
                         config_.ready,
                         config_.desc_table,
                         config_.avail_ring,
                         config_.used_ring,
                         next_avail_,
                         next_used_,
                         event_idx_,
                         indirect_,
                         signalled_used_,
                         signalled_used_valid_};
}

uint16_t SplitQueue::load_avail_idx() const {
  // Acquire: ring entries and descriptors written before idx are visible after this load.
  return load16(avail_, kRingIdx, std::memory_order_acquire);
}

uint16_t SplitQueue::avail_flags() const {
  return load16(avail_, kRingFlags, std::memory_order_relaxed);
}

uint16_t SplitQueue::used_event() const {
  return load16(avail_, kRingEntries + 2 * size_t{size_}, std::memory_order_relaxed);
}

void SplitQueue::set_used_flags(uint16_t flags) {
  store16(used_, kRingFlags, flags, std::memory_order_relaxed);
}

void SplitQueue::set_avail_event(uint16_t value) {
  store16(used_, kRingEntries + kUsedElemSize * size_t{size_}, value, std::memory_order_relaxed);
}

uint16_t SplitQueue::pending() const {
  return static_cast<uint16_t>(load_avail_idx() - next_avail_);
}

PopResult SplitQueue::pop() {
  if (broken_) {
    return std::unexpected(broken_reason_);
  }
  const uint16_t avail_idx = load_avail_idx();
  const auto available = static_cast<uint16_t>(avail_idx - next_avail_);
  if (available == 0) {
    return std::optional<ChainResult>();
  }
  if (available > size_) {
    // The driver can never have more than `size` chains outstanding (2.7.6: idx only grows by
    // the buffers it adds, each taking a descriptor): this ring is corrupt.
    broken_ = true;
    broken_reason_ = QueueError::kAvailIdxJump;
    return std::unexpected(broken_reason_);
  }
  const size_t slot = next_avail_ & (size_ - 1);
  const uint16_t head = load16(avail_, kRingEntries + 2 * slot, std::memory_order_relaxed);
  if (head >= size_) {
    broken_ = true;
    broken_reason_ = QueueError::kHeadOutOfRange;
    return std::unexpected(broken_reason_);
  }
  ++next_avail_;
  return std::optional<ChainResult>(walk_chain(*memory_, desc_, size_, head, indirect_));
}

void SplitQueue::add_used(uint16_t head, uint32_t len) {
  const size_t slot = next_used_ & (size_ - 1);
  const uint32_t elem[2] = {head, len};  // struct virtq_used_elem {le32 id; le32 len;}
  std::memcpy(used_.data() + kRingEntries + kUsedElemSize * slot, elem, sizeof elem);
  ++next_used_;
  // Release: the element above is visible before the new idx (2.7.8.2).
  store16(used_, kRingIdx, next_used_, std::memory_order_release);
}

bool SplitQueue::needs_notification() {
  // Our used->idx store must be globally visible before we read the driver's used_event/flags,
  // or we could both decide the other one will act (pairs with the driver's barrier between
  // writing used_event and re-reading used->idx).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  const uint16_t old = signalled_used_;
  const bool old_valid = signalled_used_valid_;
  signalled_used_ = next_used_;
  signalled_used_valid_ = true;
  if (old_valid && old == next_used_) {
    return false;  // nothing new since the last check
  }
  if (!event_idx_) {
    return (avail_flags() & kAvailFlagNoInterrupt) == 0;
  }
  if (!old_valid) {
    return true;
  }
  return vring_need_event(used_event(), next_used_, old);
}

void SplitQueue::disable_notification() {
  if (!event_idx_) {
    set_used_flags(kUsedFlagNoNotify);
  }
  // With EVENT_IDX the device suppresses by simply not advancing avail_event (2.7.10): the
  // driver keeps comparing against the old value and stays quiet.
}

bool SplitQueue::enable_notification() {
  if (event_idx_) {
    set_avail_event(next_avail_);
  } else {
    set_used_flags(0);
  }
  // The store above must be visible before we re-read avail->idx; otherwise a buffer added just
  // now, by a driver that still saw notifications suppressed, would be missed until the next one.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return load_avail_idx() != next_avail_;
}

}  // namespace hcnode::compute::virtio
