#include "tests/guest/virtqueue.hpp"

#include "tests/guest/cpuid.hpp"
#include "tests/guest/mmio.hpp"

namespace probe::virtio {
namespace {

// Orders our ring writes before the index store that publishes them. On
// x86 stores are not reordered with older stores (TSO), so only the
// compiler must be kept from moving them (§2.7.13.3.1's "memory barrier").
inline void store_barrier() { asm volatile("" : : : "memory"); }

// Store -> load: the avail idx store must be globally visible before we
// read used->flags to decide whether to notify (§2.7.13.4), or a device
// that just re-enabled notifications could miss the kick.
inline void full_barrier() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

template <typename T>
inline T load(const T& field) {
    return *static_cast<const volatile T*>(&field);
}
template <typename T>
inline void store(T& field, T value) {
    *static_cast<volatile T*>(&field) = value;
}

}  // namespace

bool Virtqueue::init(uint16_t size) {
    if (size == 0 || size > kMaxSize || (size & (size - 1)) != 0) {
        return false;
    }
    rings_ = Rings{};
    size_ = size;
    raw_ = false;
    reset_free_list();
    avail_shadow_ = 0;
    last_used_ = 0;
    notifies_ = 0;
    notifies_suppressed_ = 0;
    // We poll the used ring: ask the device not to interrupt (§2.7.7).
    rings_.avail_flags = kAvailFlagNoInterrupt;
    return true;
}

void Virtqueue::reset_free_list() {
    for (uint16_t i = 0; i < size_; ++i) {  // free list 0 -> 1 -> ... -> size-1
        rings_.desc[i] = VirtqDesc{0, 0, 0, static_cast<uint16_t>(i + 1)};
        outstanding_[i] = false;
    }
    free_head_ = 0;
    num_free_ = size_;
    in_flight_ = 0;
}

void Virtqueue::set_notify(uintptr_t notify_addr, uint16_t queue_index) {
    notify_addr_ = notify_addr;
    queue_index_ = queue_index;
}

uint64_t Virtqueue::desc_paddr() const { return reinterpret_cast<uintptr_t>(&rings_.desc[0]); }
uint64_t Virtqueue::avail_paddr() const { return reinterpret_cast<uintptr_t>(&rings_.avail_flags); }
uint64_t Virtqueue::used_paddr() const { return reinterpret_cast<uintptr_t>(&rings_.used_flags); }

bool Virtqueue::add(const Buffer* bufs, uint16_t n, uint16_t* head) {
    if (n == 0 || n > num_free_ || raw_) {
        return false;
    }
    const uint16_t first = free_head_;
    uint16_t idx = first;
    for (uint16_t i = 0; i < n; ++i) {
        VirtqDesc& d = rings_.desc[idx];
        const uint16_t next_free = d.next;
        d.addr = bufs[i].addr;
        d.len = bufs[i].len;
        d.flags = static_cast<uint16_t>((bufs[i].device_writes ? kDescFlagWrite : 0) |
                                        (i + 1 < n ? kDescFlagNext : 0));
        // For NEXT the link is the next free descriptor, which is exactly
        // where the following buffer goes; the last one keeps its free-list
        // link, which the device ignores without NEXT.
        if (i + 1 < n) {
            d.next = next_free;
        }
        idx = next_free;
    }
    free_head_ = idx;
    num_free_ = static_cast<uint16_t>(num_free_ - n);
    outstanding_[first] = true;
    ++in_flight_;
    // §2.7.13.2: ring[avail idx % size] = head; idx itself waits for kick().
    rings_.avail_ring[avail_shadow_ & (size_ - 1)] = first;
    avail_shadow_ = static_cast<uint16_t>(avail_shadow_ + 1);
    *head = first;
    return true;
}

bool Virtqueue::add_indirect(uint64_t table_paddr, uint32_t entries, uint16_t* head) {
    if (entries == 0 || num_free_ == 0 || raw_) {
        return false;
    }
    const uint16_t first = free_head_;
    VirtqDesc& d = rings_.desc[first];
    free_head_ = d.next;
    d.addr = table_paddr;
    d.len = entries * static_cast<uint32_t>(sizeof(VirtqDesc));
    d.flags = kDescFlagIndirect;  // §2.7.5.3.1: not together with NEXT here
    num_free_ = static_cast<uint16_t>(num_free_ - 1);
    outstanding_[first] = true;
    ++in_flight_;
    rings_.avail_ring[avail_shadow_ & (size_ - 1)] = first;
    avail_shadow_ = static_cast<uint16_t>(avail_shadow_ + 1);
    *head = first;
    return true;
}

bool Virtqueue::kick() {
    store_barrier();
    store(rings_.avail_idx, avail_shadow_);  // §2.7.13.3 (wraps at 2^16 by design)
    full_barrier();
    if ((load(rings_.used_flags) & kUsedFlagNoNotify) != 0) {
        ++notifies_suppressed_;
        return false;
    }
    // §4.1.5.2: the queue index, 16 bits (no VIRTIO_F_NOTIFICATION_DATA).
    mmio::write16(notify_addr_, queue_index_);
    ++notifies_;
    return true;
}

Virtqueue::PollResult Virtqueue::poll(Used* out, uint64_t deadline_tsc) {
    while (load(rings_.used_idx) == last_used_) {
        if (cpu::rdtsc() >= deadline_tsc) {
            return PollResult::kTimeout;
        }
        cpu::pause();
    }
    return take(out);
}

Virtqueue::PollResult Virtqueue::try_poll(Used* out) {
    if (load(rings_.used_idx) == last_used_) {
        return PollResult::kEmpty;
    }
    return take(out);
}

// Consumes the next used element (the caller saw used idx move).
Virtqueue::PollResult Virtqueue::take(Used* out) {
    // The element is read after the index (loads are not reordered with
    // older loads on x86; keep the compiler from doing it either).
    store_barrier();
    const auto& elem = rings_.used_ring[last_used_ & (size_ - 1)];
    const uint32_t id = load(elem.id);
    const uint32_t len = load(elem.len);
    last_used_ = static_cast<uint16_t>(last_used_ + 1);
    if (id >= size_ || !outstanding_[id]) {
        return PollResult::kBadId;
    }
    free_chain(static_cast<uint16_t>(id));
    out->id = static_cast<uint16_t>(id);
    out->len = len;
    return PollResult::kOk;
}

void Virtqueue::free_chain(uint16_t head) {
    outstanding_[head] = false;
    --in_flight_;
    // The device never writes descriptors, so the chain is as add() left
    // it; bounded by size_ in case memory was corrupted.
    uint16_t idx = head;
    uint16_t count = 1;
    while ((rings_.desc[idx].flags & kDescFlagNext) != 0 && count < size_) {
        idx = rings_.desc[idx].next;
        ++count;
    }
    rings_.desc[idx].flags = 0;
    rings_.desc[idx].next = free_head_;  // chain's tail -> old free list
    free_head_ = head;
    num_free_ = static_cast<uint16_t>(num_free_ + count);
}

// --- raw access (mode=hostile) ---------------------------------------

bool Virtqueue::raw_begin() {
    if (raw_ || in_flight_ != 0 || num_free_ != size_) {
        return false;
    }
    raw_ = true;
    return true;
}

void Virtqueue::raw_set_desc(uint16_t index, const VirtqDesc& desc) {
    if (raw_ && index < size_) {
        rings_.desc[index] = desc;
    }
}

void Virtqueue::raw_publish(uint16_t head) {
    if (!raw_) {
        return;
    }
    rings_.avail_ring[avail_shadow_ & (size_ - 1)] = head;
    avail_shadow_ = static_cast<uint16_t>(avail_shadow_ + 1);
    store_barrier();
    store(rings_.avail_idx, avail_shadow_);
    full_barrier();
}

void Virtqueue::raw_publish_idx(uint16_t idx) {
    if (!raw_) {
        return;
    }
    store_barrier();
    store(rings_.avail_idx, idx);
    full_barrier();
}

void Virtqueue::raw_notify() {
    mmio::write16(notify_addr_, queue_index_);
    ++notifies_;
}

Virtqueue::PollResult Virtqueue::raw_poll(Used* out, uint64_t deadline_tsc) {
    while (load(rings_.used_idx) == last_used_) {
        if (cpu::rdtsc() >= deadline_tsc) {
            return PollResult::kTimeout;
        }
        cpu::pause();
    }
    store_barrier();
    const auto& elem = rings_.used_ring[last_used_ & (size_ - 1)];
    out->id = static_cast<uint16_t>(load(elem.id));
    out->len = load(elem.len);
    last_used_ = static_cast<uint16_t>(last_used_ + 1);
    return PollResult::kOk;
}

void Virtqueue::raw_end() {
    if (!raw_) {
        return;
    }
    raw_ = false;
    reset_free_list();
    // The published idx may be anything after raw_publish_idx(); the next
    // add() continues from what we last published ourselves.
    store(rings_.avail_idx, avail_shadow_);
}

}  // namespace probe::virtio
