// MockSplitQueue: the *driver* side of a split virtqueue, in a FakeGuestMemory, for tests and the
// fuzzer. It lays out a descriptor table, available ring and used ring the way a guest driver
// would (virtio 1.2 2.7), builds descriptor chains (direct or indirect), publishes them in the
// available ring, and reads back what the device put in the used ring.
//
//   FakeGuestMemory mem(1 << 20);
//   MockSplitQueue driver(mem, 16);
//   uint64_t buf = driver.alloc(64);
//   uint16_t head = driver.add_chain({{buf, 64, /*writable=*/true}});
//   auto q = SplitQueue::create(mem, driver.config(), 0);
//   ... device pops, add_used(head, 64) ...
//   CHECK(driver.used_idx() == 1);
//   CHECK(driver.used_elem(0).id == head);
//
// Single-threaded (the test thread plays the driver).
#pragma once

#include <cstdint>
#include <vector>

#include "compute/virtio/constants.hpp"
#include "compute/virtio/descriptor_chain.hpp"
#include "compute/virtio/split_queue.hpp"
#include "tests/fakes/fake_guest_memory.hpp"

namespace hcnode::testing {

class MockSplitQueue {
 public:
  struct UsedElem {
    uint32_t id;
    uint32_t len;
  };

  // Rings start at `ring_base` (16-aligned); buffers and indirect tables come from a bump
  // allocator that starts after them.
  MockSplitQueue(FakeGuestMemory& memory, uint16_t size, uint64_t ring_base = 0x1000)
      : mem_(memory), size_(size) {
    desc_ = ring_base;
    avail_ = desc_ + 16ull * size;
    used_ = align(avail_ + 6ull + 2ull * size, 4);
    next_data_ = align(used_ + 6ull + 8ull * size, 4096);
  }

  compute::virtio::QueueConfig config() const {
    return compute::virtio::QueueConfig{size_, true, desc_, avail_, used_};
  }
  uint16_t size() const { return size_; }
  uint64_t desc_addr() const { return desc_; }
  uint64_t avail_addr() const { return avail_; }
  uint64_t used_addr() const { return used_; }

  // Bump allocation of guest memory for buffers and tables.
  uint64_t alloc(uint64_t len, uint64_t alignment = 16) {
    const uint64_t at = align(next_data_, alignment);
    next_data_ = at + len;
    return at;
  }

  void write_desc(uint16_t index, const compute::virtio::VirtqDescriptor& d) {
    (void)mem_.write_obj(desc_ + 16ull * index, d);
  }

  // Writes `buffers` as descriptors first, first+1, ... linked with NEXT; returns `first`.
  uint16_t build_chain(uint16_t first, const std::vector<compute::virtio::Buffer>& buffers) {
    for (size_t i = 0; i < buffers.size(); ++i) {
      const auto index = static_cast<uint16_t>((first + i) % size_);
      const bool last = i + 1 == buffers.size();
      uint16_t flags = buffers[i].writable ? compute::virtio::kDescFlagWrite : 0;
      if (!last) {
        flags |= compute::virtio::kDescFlagNext;
      }
      write_desc(index, {buffers[i].gpa, buffers[i].len, flags,
                         static_cast<uint16_t>(last ? 0 : (index + 1) % size_)});
    }
    return first;
  }

  // Takes descriptors from a running index, builds the chain and makes it available.
  uint16_t add_chain(const std::vector<compute::virtio::Buffer>& buffers) {
    const uint16_t head = next_free_;
    build_chain(head, buffers);
    next_free_ = static_cast<uint16_t>((next_free_ + buffers.size()) % size_);
    publish(head);
    return head;
  }

  // Writes `buffers` into a fresh indirect table and publishes one main descriptor pointing at
  // it (VIRTQ_DESC_F_INDIRECT).
  uint16_t add_indirect_chain(const std::vector<compute::virtio::Buffer>& buffers) {
    const uint64_t table = alloc(16ull * buffers.size(), 16);
    write_indirect_table(table, buffers);
    const uint16_t head = next_free_;
    write_desc(head, {table, static_cast<uint32_t>(16 * buffers.size()),
                      compute::virtio::kDescFlagIndirect, 0});
    next_free_ = static_cast<uint16_t>((next_free_ + 1) % size_);
    publish(head);
    return head;
  }

  void write_indirect_table(uint64_t table, const std::vector<compute::virtio::Buffer>& buffers) {
    for (size_t i = 0; i < buffers.size(); ++i) {
      const bool last = i + 1 == buffers.size();
      uint16_t flags = buffers[i].writable ? compute::virtio::kDescFlagWrite : 0;
      if (!last) {
        flags |= compute::virtio::kDescFlagNext;
      }
      const auto next = static_cast<uint16_t>(last ? 0 : i + 1);
      (void)mem_.write_obj(table + 16 * i, compute::virtio::VirtqDescriptor{
                                               buffers[i].gpa, buffers[i].len, flags, next});
    }
  }

  // Puts head in the next available slot and advances avail->idx.
  void publish(uint16_t head) {
    const uint16_t idx = avail_idx();
    (void)mem_.write_obj<uint16_t>(avail_ + 4 + 2ull * (idx % size_), head);
    set_avail_idx(static_cast<uint16_t>(idx + 1));
  }

  uint16_t avail_idx() const { return read16(avail_ + 2); }
  void set_avail_idx(uint16_t idx) { (void)mem_.write_obj<uint16_t>(avail_ + 2, idx); }
  void set_avail_flags(uint16_t flags) { (void)mem_.write_obj<uint16_t>(avail_, flags); }
  void set_avail_ring_entry(uint16_t slot, uint16_t head) {
    (void)mem_.write_obj<uint16_t>(avail_ + 4 + 2ull * (slot % size_), head);
  }
  // avail->used_event (VIRTIO_F_EVENT_IDX), after the ring entries.
  void set_used_event(uint16_t value) {
    (void)mem_.write_obj<uint16_t>(avail_ + 4 + 2ull * size_, value);
  }

  uint16_t used_flags() const { return read16(used_); }
  uint16_t used_idx() const { return read16(used_ + 2); }
  // used->avail_event (VIRTIO_F_EVENT_IDX), after the used elements.
  uint16_t avail_event() const { return read16(used_ + 4 + 8ull * size_); }
  UsedElem used_elem(uint16_t i) const {
    auto e = mem_.read_obj<UsedElem>(used_ + 4 + 8ull * (i % size_));
    return e ? *e : UsedElem{0xFFFF'FFFF, 0xFFFF'FFFF};
  }

 private:
  static uint64_t align(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }
  uint16_t read16(uint64_t gpa) const {
    auto v = mem_.read_obj<uint16_t>(gpa);
    return v ? *v : 0;
  }

  FakeGuestMemory& mem_;
  uint16_t size_;
  uint64_t desc_ = 0;
  uint64_t avail_ = 0;
  uint64_t used_ = 0;
  uint64_t next_data_ = 0;
  uint16_t next_free_ = 0;
};

}  // namespace hcnode::testing
