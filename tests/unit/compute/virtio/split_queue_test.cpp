#include <vector>

#include <catch2/catch.hpp>

#include "compute/virtio/constants.hpp"
#include "compute/virtio/split_queue.hpp"
#include "tests/fakes/fake_guest_memory.hpp"
#include "tests/fakes/mock_split_queue.hpp"

using namespace hcnode;
using namespace hcnode::compute;
using namespace hcnode::compute::virtio;
using hcnode::testing::FakeGuestMemory;
using hcnode::testing::MockSplitQueue;

namespace {

constexpr uint64_t kMem = 1 << 20;

struct QueueFixture {
  explicit QueueFixture(uint16_t size = 16, uint64_t features = 0)
      : driver(mem, size), queue(*SplitQueue::create(mem, driver.config(), features)) {}
  FakeGuestMemory mem{kMem};
  MockSplitQueue driver;
  SplitQueue queue;

  // Pops one entry and expects a chain result (valid or not).
  ChainResult pop_chain() {
    auto popped = queue.pop();
    REQUIRE(popped.has_value());
    REQUIRE(popped->has_value());
    return **popped;
  }
  ChainErrorKind pop_error() {
    auto chain = pop_chain();
    REQUIRE_FALSE(chain.has_value());
    return chain.error().kind;
  }
};

// GuestMemory that claims 16 GiB beyond the real fake RAM without backing it: enough for the
// walker's range checks (it never touches buffer contents). Only for the 2^32 length test.
class HugeGuestMemory final : public GuestMemory {
 public:
  explicit HugeGuestMemory(FakeGuestMemory& inner) : inner_(inner) {}
  Result<std::span<uint8_t>> slice(uint64_t gpa, uint64_t len) const override {
    if (range_inside(gpa, len, 1ull << 32, 16ull << 30)) {
      return std::span<uint8_t>();  // "inside RAM"; contents never read by the walker
    }
    return inner_.slice(gpa, len);
  }
  uint64_t ram_size() const override { return inner_.ram_size() + (16ull << 30); }

 private:
  FakeGuestMemory& inner_;
};

}  // namespace

TEST_CASE("virtio split queue: create validates size, alignment and guest RAM", "[virtio]") {
  FakeGuestMemory mem(kMem);
  MockSplitQueue driver(mem, 16);
  QueueConfig cfg = driver.config();
  CHECK(SplitQueue::create(mem, cfg, 0).has_value());

  auto bad = [&](auto mutate) {
    QueueConfig c = cfg;
    mutate(c);
    return SplitQueue::create(mem, c, 0).error().code();
  };
  CHECK(bad([](QueueConfig& c) { c.size = 0; }) == EINVAL);
  CHECK(bad([](QueueConfig& c) { c.size = 12; }) == EINVAL);
  CHECK(bad([](QueueConfig& c) { c.size = 65535; }) == EINVAL);
  CHECK(bad([](QueueConfig& c) { c.desc_table += 8; }) == EINVAL);
  CHECK(bad([](QueueConfig& c) { c.avail_ring += 1; }) == EINVAL);
  CHECK(bad([](QueueConfig& c) { c.used_ring += 2; }) == EINVAL);
  CHECK(bad([](QueueConfig& c) { c.used_ring = kMem - 16; }) == EFAULT);
  CHECK(bad([](QueueConfig& c) { c.desc_table = ~0ull & ~15ull; }) == EFAULT);
  // 32768 entries is the largest legal queue.
  QueueConfig big{32768, true, 0x10000, 0x90000, 0xB0000};
  FakeGuestMemory large(1 << 20);
  CHECK(SplitQueue::create(large, big, 0).has_value());
}

TEST_CASE("virtio split queue: simple chains pop in order and used entries publish in order",
          "[virtio]") {
  QueueFixture f;
  const uint64_t hdr = f.driver.alloc(16), data = f.driver.alloc(64);
  const uint16_t head =
      f.driver.add_chain({{hdr, 16, false}, {data, 64, true}, {data + 64, 1, true}});
  CHECK(f.queue.pending() == 1);
  auto chain = f.pop_chain();
  REQUIRE(chain);
  CHECK(chain->head == head);
  CHECK(chain->readable_count == 1);
  CHECK(chain->readable_bytes == 16);
  CHECK(chain->writable_bytes == 65);
  REQUIRE(chain->buffers.size() == 3);
  CHECK(chain->readable()[0] == Buffer{hdr, 16, false});
  CHECK(chain->writable()[0] == Buffer{data, 64, true});
  auto empty = f.queue.pop();
  REQUIRE(empty);
  CHECK_FALSE(empty->has_value());

  // Three more; complete them out of order: the used ring shows completion order.
  const uint16_t a = f.driver.add_chain({{data, 8, true}});
  const uint16_t b = f.driver.add_chain({{data, 8, true}});
  const uint16_t c = f.driver.add_chain({{data, 8, true}});
  CHECK(f.pop_chain()->head == a);
  CHECK(f.pop_chain()->head == b);
  CHECK(f.pop_chain()->head == c);
  f.queue.add_used(head, 65);
  f.queue.add_used(c, 3);
  f.queue.add_used(a, 1);
  CHECK(f.driver.used_idx() == 3);
  CHECK(f.driver.used_elem(0).id == head);
  CHECK(f.driver.used_elem(0).len == 65);
  CHECK(f.driver.used_elem(1).id == c);
  CHECK(f.driver.used_elem(2).id == a);
  CHECK(f.queue.next_used() == 3);
}

TEST_CASE("virtio split queue: the rings wrap around the 16-bit indexes", "[virtio]") {
  QueueFixture f(4);
  const uint64_t data = f.driver.alloc(8);
  for (int round = 0; round < 70000; round += 3) {
    for (int i = 0; i < 3; ++i) {
      f.driver.add_chain({{data, 8, true}});
    }
    for (int i = 0; i < 3; ++i) {
      auto chain = f.pop_chain();
      REQUIRE(chain);
      f.queue.add_used(chain->head, 8);
    }
  }
  CHECK(f.driver.used_idx() == f.queue.next_used());
  CHECK(f.queue.next_avail() == f.driver.avail_idx());
}

TEST_CASE("virtio split queue: indirect descriptor tables", "[virtio]") {
  QueueFixture f(16, kFeatureIndirectDesc);
  const uint64_t data = f.driver.alloc(256);
  const uint16_t head =
      f.driver.add_indirect_chain({{data, 16, false}, {data + 16, 32, true}, {data + 48, 8, true}});
  auto chain = f.pop_chain();
  REQUIRE(chain);
  CHECK(chain->head == head);
  REQUIRE(chain->buffers.size() == 3);
  CHECK(chain->readable_count == 1);
  CHECK(chain->writable_bytes == 40);

  SECTION("direct descriptors may precede the indirect one (2.7.5.3.2)") {
    const uint64_t table = f.driver.alloc(32);
    f.driver.write_indirect_table(table, {{data + 64, 4, true}, {data + 68, 4, true}});
    f.driver.write_desc(5, {data, 16, kDescFlagNext, 6});
    f.driver.write_desc(6, {table, 32, kDescFlagIndirect | kDescFlagWrite, 0});  // WRITE ignored
    f.driver.publish(5);
    auto mixed = f.pop_chain();
    REQUIRE(mixed);
    CHECK(mixed->buffers.size() == 3);
    CHECK(mixed->readable_count == 1);
    CHECK(mixed->writable_bytes == 8);
  }

  SECTION("without VIRTIO_F_INDIRECT_DESC an indirect descriptor is an error") {
    QueueFixture plain(16, 0);
    plain.driver.add_indirect_chain({{data, 16, true}});
    CHECK(plain.pop_error() == ChainErrorKind::kIndirectNotNegotiated);
  }
}

TEST_CASE("virtio split queue: malformed indirect tables are errors", "[virtio]") {
  QueueFixture f(16, kFeatureIndirectDesc);
  const uint64_t data = f.driver.alloc(64);
  const uint64_t table = f.driver.alloc(16 * 32);

  SECTION("nested indirect") {
    f.driver.write_indirect_table(table, {{data, 8, false}});
    (void)f.mem.write_obj(table, VirtqDescriptor{table, 16, kDescFlagIndirect, 0});
    f.driver.write_desc(0, {table, 16, kDescFlagIndirect, 0});
    f.driver.publish(0);
    CHECK(f.pop_error() == ChainErrorKind::kNestedIndirect);
  }
  SECTION("INDIRECT together with NEXT") {
    f.driver.write_indirect_table(table, {{data, 8, false}});
    f.driver.write_desc(0, {table, 16, kDescFlagIndirect | kDescFlagNext, 1});
    f.driver.publish(0);
    CHECK(f.pop_error() == ChainErrorKind::kIndirectWithNext);
  }
  SECTION("length zero, not a multiple of 16, or longer than the queue") {
    for (uint32_t len : {0u, 24u, 16u * 17}) {
      f.driver.write_desc(0, {table, len, kDescFlagIndirect, 0});
      f.driver.publish(0);
      CHECK(f.pop_error() == ChainErrorKind::kIndirectBadLength);
    }
  }
  SECTION("table outside guest RAM") {
    f.driver.write_desc(0, {kMem - 16, 32, kDescFlagIndirect, 0});
    f.driver.publish(0);
    CHECK(f.pop_error() == ChainErrorKind::kIndirectOutsideRam);
  }
  SECTION("index out of the indirect table, loop inside it") {
    (void)f.mem.write_obj(table, VirtqDescriptor{data, 8, kDescFlagNext, 2});
    (void)f.mem.write_obj(table + 16, VirtqDescriptor{data, 8, 0, 0});
    f.driver.write_desc(0, {table, 32, kDescFlagIndirect, 0});
    f.driver.publish(0);
    CHECK(f.pop_error() == ChainErrorKind::kIndexOutOfRange);
    (void)f.mem.write_obj(table, VirtqDescriptor{data, 8, kDescFlagNext, 1});
    (void)f.mem.write_obj(table + 16, VirtqDescriptor{data, 8, kDescFlagNext, 0});
    f.driver.publish(0);
    CHECK(f.pop_error() == ChainErrorKind::kTooManyDescriptors);
  }
}

TEST_CASE("virtio split queue: descriptor loops end in an error, not a hang", "[virtio]") {
  QueueFixture f(8);
  const uint64_t data = f.driver.alloc(8);
  f.driver.write_desc(0, {data, 8, kDescFlagNext, 1});
  f.driver.write_desc(1, {data, 8, kDescFlagNext, 0});
  f.driver.publish(0);
  auto chain = f.pop_chain();
  REQUIRE_FALSE(chain);
  CHECK(chain.error().kind == ChainErrorKind::kTooManyDescriptors);
  CHECK(chain.error().head == 0);
  // Self loop.
  f.driver.write_desc(3, {data, 8, kDescFlagNext, 3});
  f.driver.publish(3);
  CHECK(f.pop_error() == ChainErrorKind::kTooManyDescriptors);
  // A chain using every descriptor exactly once is fine.
  std::vector<Buffer> all(8, Buffer{data, 1, true});
  f.driver.build_chain(0, all);
  f.driver.publish(0);
  auto full = f.pop_chain();
  REQUIRE(full);
  CHECK(full->buffers.size() == 8);
}

TEST_CASE("virtio split queue: buffers must lie inside guest RAM", "[virtio]") {
  QueueFixture f(8);
  f.driver.add_chain({{kMem - 4, 8, true}});
  CHECK(f.pop_error() == ChainErrorKind::kBufferOutsideRam);
  f.driver.add_chain({{~0ull - 3, 16, true}});  // would wrap around 2^64
  CHECK(f.pop_error() == ChainErrorKind::kBufferOutsideRam);
  f.driver.add_chain({{kMem, 0, true}});  // empty buffer at the very end: allowed
  CHECK(f.pop_chain().has_value());
}

TEST_CASE("virtio split queue: next index out of range", "[virtio]") {
  QueueFixture f(8);
  const uint64_t data = f.driver.alloc(8);
  f.driver.write_desc(0, {data, 8, kDescFlagNext, 8});
  f.driver.publish(0);
  CHECK(f.pop_error() == ChainErrorKind::kIndexOutOfRange);
  f.driver.write_desc(0, {data, 8, kDescFlagNext, 0xFFFF});
  f.driver.publish(0);
  CHECK(f.pop_error() == ChainErrorKind::kIndexOutOfRange);
}

TEST_CASE("virtio split queue: a readable descriptor after a writable one is refused",
          "[virtio]") {
  QueueFixture f(8);
  const uint64_t data = f.driver.alloc(64);
  f.driver.add_chain({{data, 8, true}, {data + 8, 8, false}});
  auto chain = f.pop_chain();
  REQUIRE_FALSE(chain);
  CHECK(chain.error().kind == ChainErrorKind::kReadableAfterWritable);
  CHECK(f.queue.next_avail() == 1);  // consumed: the device completes it and goes on
}

TEST_CASE("virtio split queue: chains totalling more than 2^32 bytes are refused", "[virtio]") {
  FakeGuestMemory real(kMem);
  HugeGuestMemory mem(real);
  MockSplitQueue driver(real, 8);
  auto queue = SplitQueue::create(mem, driver.config(), 0);
  REQUIRE(queue);
  const uint64_t far = 1ull << 32;
  driver.add_chain({{far, 0x8000'0000u, true}, {far, 0x8000'0000u, true}});
  auto exact = queue->pop();
  REQUIRE(exact);
  CHECK((*exact)->has_value());  // exactly 2^32 is allowed
  driver.add_chain({{far, 0xFFFF'FFFFu, true}, {far, 0xFFFF'FFFFu, true}});
  auto over = queue->pop();
  REQUIRE(over);
  REQUIRE_FALSE((*over)->has_value());
  CHECK((*over)->error().kind == ChainErrorKind::kChainTooLong);
}

TEST_CASE("virtio split queue: a corrupt available ring breaks the queue", "[virtio]") {
  SECTION("avail idx more than the queue size ahead") {
    QueueFixture f(8);
    f.driver.set_avail_idx(9);
    auto popped = f.queue.pop();
    REQUIRE_FALSE(popped);
    CHECK(popped.error() == QueueError::kAvailIdxJump);
    f.driver.set_avail_idx(1);  // stays broken until rebuilt
    CHECK_FALSE(f.queue.pop());
  }
  SECTION("exactly the queue size ahead is fine") {
    QueueFixture f(8);
    const uint64_t data = f.driver.alloc(8);
    for (int i = 0; i < 8; ++i) {
      f.driver.add_chain({{data, 8, true}});
    }
    for (int i = 0; i < 8; ++i) {
      CHECK(f.pop_chain().has_value());
    }
  }
  SECTION("a head index out of range") {
    QueueFixture f(8);
    f.driver.publish(8);
    auto popped = f.queue.pop();
    REQUIRE_FALSE(popped);
    CHECK(popped.error() == QueueError::kHeadOutOfRange);
    CHECK(to_string(popped.error()).size() > 0);
  }
}

TEST_CASE("virtio split queue: vring_need_event with 16-bit wrap-around", "[virtio]") {
  // (event, new, old): notify iff event is in [old, new) modulo 2^16.
  CHECK(vring_need_event(0, 1, 0));
  CHECK_FALSE(vring_need_event(1, 1, 0));
  CHECK(vring_need_event(5, 10, 3));
  CHECK(vring_need_event(3, 10, 3));
  CHECK(vring_need_event(9, 10, 3));
  CHECK_FALSE(vring_need_event(10, 10, 3));
  CHECK_FALSE(vring_need_event(2, 10, 3));
  CHECK_FALSE(vring_need_event(2, 3, 3));  // nothing new
  // Across the wrap: old = 0xFFFE, new = 2 covers 0xFFFE, 0xFFFF, 0, 1.
  CHECK(vring_need_event(0xFFFE, 2, 0xFFFE));
  CHECK(vring_need_event(0xFFFF, 2, 0xFFFE));
  CHECK(vring_need_event(0x0000, 2, 0xFFFE));
  CHECK(vring_need_event(0x0001, 2, 0xFFFE));
  CHECK_FALSE(vring_need_event(0x0002, 2, 0xFFFE));
  CHECK_FALSE(vring_need_event(0xFFFD, 2, 0xFFFE));
  CHECK_FALSE(vring_need_event(0x8000, 2, 0xFFFE));
}

TEST_CASE("virtio split queue: event idx suppresses used notifications", "[virtio]") {
  QueueFixture f(16, kFeatureEventIdx);
  const uint64_t data = f.driver.alloc(8);
  auto complete_one = [&] {
    f.driver.add_chain({{data, 8, true}});
    auto chain = f.pop_chain();
    REQUIRE(chain);
    f.queue.add_used(chain->head, 8);
  };
  f.driver.set_used_event(0);
  complete_one();  // used idx 0 -> 1 crosses used_event 0
  CHECK(f.queue.needs_notification());
  CHECK_FALSE(f.queue.needs_notification());  // nothing new since
  f.driver.set_used_event(4);
  complete_one();  // 1 -> 2
  CHECK_FALSE(f.queue.needs_notification());
  complete_one();  // 2 -> 3
  complete_one();  // 3 -> 4
  CHECK_FALSE(f.queue.needs_notification());
  complete_one();  // 4 -> 5: the entry at index 4 was written
  CHECK(f.queue.needs_notification());
  // The NO_INTERRUPT flag is ignored under EVENT_IDX.
  f.driver.set_avail_flags(kAvailFlagNoInterrupt);
  f.driver.set_used_event(5);
  complete_one();
  CHECK(f.queue.needs_notification());
}

TEST_CASE("virtio split queue: event idx on the driver side - avail_event", "[virtio]") {
  QueueFixture f(16, kFeatureEventIdx);
  const uint64_t data = f.driver.alloc(8);
  f.queue.disable_notification();
  CHECK(f.driver.used_flags() == 0);  // flags must stay 0 with EVENT_IDX
  f.driver.add_chain({{data, 8, true}});
  f.driver.add_chain({{data, 8, true}});
  REQUIRE(f.pop_chain());
  CHECK(f.queue.enable_notification());  // one more is waiting: don't sleep
  CHECK(f.driver.avail_event() == 1);
  REQUIRE(f.pop_chain());
  CHECK_FALSE(f.queue.enable_notification());
  CHECK(f.driver.avail_event() == 2);
}

TEST_CASE("virtio split queue: without event idx the ring flags suppress notifications",
          "[virtio]") {
  QueueFixture f(8);
  const uint64_t data = f.driver.alloc(8);
  f.queue.disable_notification();
  CHECK(f.driver.used_flags() == kUsedFlagNoNotify);
  CHECK_FALSE(f.queue.enable_notification());
  CHECK(f.driver.used_flags() == 0);

  f.driver.add_chain({{data, 8, true}});
  f.queue.add_used(f.pop_chain()->head, 8);
  CHECK(f.queue.needs_notification());
  f.driver.set_avail_flags(kAvailFlagNoInterrupt);
  f.driver.add_chain({{data, 8, true}});
  f.queue.add_used(f.pop_chain()->head, 8);
  CHECK_FALSE(f.queue.needs_notification());
}

TEST_CASE("virtio split queue: state save and restore resume at the same place", "[virtio]") {
  QueueFixture f(8, kFeatureEventIdx | kFeatureIndirectDesc);
  const uint64_t data = f.driver.alloc(8);
  for (int i = 0; i < 3; ++i) {
    f.driver.add_chain({{data, 8, true}});
  }
  auto first = f.pop_chain();
  auto second = f.pop_chain();
  f.queue.add_used(first->head, 8);
  (void)f.queue.needs_notification();

  const SplitQueueState state = f.queue.save();
  CHECK(state.size == 8);
  CHECK(state.next_avail == 2);
  CHECK(state.next_used == 1);
  CHECK(state.event_idx_enabled);
  CHECK(state.indirect_enabled);
  CHECK(state.desc == f.driver.desc_addr());
  CHECK(state.avail == f.driver.avail_addr());
  CHECK(state.used == f.driver.used_addr());

  auto restored = SplitQueue::restore(f.mem, state);
  REQUIRE(restored);
  CHECK(restored->save() == state);
  auto popped = restored->pop();
  REQUIRE(popped);
  REQUIRE(popped->has_value());
  CHECK((**popped)->head == 2);
  restored->add_used(second->head, 8);
  CHECK(f.driver.used_idx() == 2);
  CHECK(f.driver.used_elem(1).id == second->head);

  SplitQueueState bad = state;
  bad.used = kMem;
  CHECK(SplitQueue::restore(f.mem, bad).error().code() == EFAULT);
}

TEST_CASE("virtio split queue: undo_pop gives the chain back", "[virtio]") {
  QueueFixture f(8);
  const uint64_t data = f.driver.alloc(8);
  const uint16_t head = f.driver.add_chain({{data, 8, true}});
  REQUIRE(f.pop_chain());
  f.queue.undo_pop();
  CHECK(f.queue.pending() == 1);
  CHECK(f.pop_chain()->head == head);
}
