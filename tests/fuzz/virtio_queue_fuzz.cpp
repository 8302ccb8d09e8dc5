// libFuzzer target: the split virtqueue (pop, descriptor chain walking, used ring, notification
// suppression) over guest memory whose contents the fuzzer controls — what a hostile guest can
// do to a device. Every run must end without a crash, a hang (the walker's hop limits), an
// access outside the fake guest RAM (ASan) or undefined behaviour (UBSan), and every chain the
// queue accepts must satisfy the invariants the devices rely on (checked below with abort()).
//
// Input: 4 header bytes, then the initial contents of a 64 KiB guest RAM.
//   byte 0: queue size = 1 << (b % 9)   (1..256)
//   byte 1: bit 0 INDIRECT_DESC, bit 1 EVENT_IDX, bit 2 "tame" mode, bits 3..7 ring placement
//   byte 2: how many pops to attempt (bounded)
//   byte 3: seed for the device-side actions between pops
// In tame mode the descriptor table's addresses, lengths and next fields are folded into range,
// so most chains are valid and the fuzzer reaches the deeper checks (the idea of
// cloud-hypervisor's fuzz/block.rs "rarely()").
//
// Build and run: tests/fuzz/run-fuzzers.sh (tests/fuzz/README.md); seeds in
// tests/fuzz/corpus/virtio_queue_fuzz (tests/fuzz/make_seeds.py).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "compute/virtio/constants.hpp"
#include "compute/virtio/split_queue.hpp"
#include "tests/fakes/fake_guest_memory.hpp"

using namespace hcnode::compute::virtio;

namespace {

constexpr uint64_t kRamSize = 64 * 1024;

void check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

// Folds descriptor fields into range so the chain is likely (not certainly) well-formed.
void tame_descriptors(hcnode::testing::FakeGuestMemory& mem, uint64_t table, uint16_t entries) {
  for (uint16_t i = 0; i < entries; ++i) {
    auto d = mem.read_obj<VirtqDescriptor>(table + 16ull * i);
    if (!d) {
      return;
    }
    d->addr %= kRamSize;
    d->len %= 2048;
    d->next %= entries;
    if ((d->flags & kDescFlagIndirect) != 0) {
      d->len = static_cast<uint32_t>(16 * (1 + d->len % entries));
      d->addr &= ~uint64_t{15};
    }
    (void)mem.write_obj(table + 16ull * i, *d);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) {
    return 0;
  }
  const uint16_t queue_size = static_cast<uint16_t>(1u << (data[0] % 9));
  const uint8_t flags = data[1];
  const unsigned pops = 1u + data[2] % 64;
  uint8_t action = data[3];
  const uint64_t features = ((flags & 1) ? kFeatureIndirectDesc : 0) |
                            ((flags & 2) ? kFeatureEventIdx : 0);
  const bool tame = (flags & 4) != 0;

  // One RAM reused across runs (a fresh 64 KiB per run mostly measures ASan's allocator),
  // reset to exactly the input's contents.
  static hcnode::testing::FakeGuestMemory mem(kRamSize);
  const size_t body = std::min<size_t>(size - 4, kRamSize);
  std::memset(mem.host(0), 0, kRamSize);
  if (body > 0) {
    std::memcpy(mem.host(0), data + 4, body);
  }

  // Ring placement: desc table, avail ring, used ring one after another from a fuzzed base.
  const uint64_t base = (static_cast<uint64_t>(flags >> 3) * 0x400) & ~uint64_t{15};
  QueueConfig config;
  config.size = queue_size;
  config.ready = true;
  config.desc_table = base;
  config.avail_ring = base + 16ull * queue_size;
  config.used_ring = (config.avail_ring + 6 + 2ull * queue_size + 3) & ~uint64_t{3};
  if (tame) {
    tame_descriptors(mem, config.desc_table, queue_size);
  }

  auto created = SplitQueue::create(mem, config, features);
  if (!created) {
    return 0;  // rings outside the 64 KiB: refused, fine
  }
  SplitQueue& queue = *created;

  for (unsigned i = 0; i < pops; ++i) {
    action = static_cast<uint8_t>(action * 33 + 17);  // cheap deterministic variety
    if (action & 0x10) {
      queue.disable_notification();
    }
    auto popped = queue.pop();
    if (!popped) {
      // A broken ring stays broken.
      check(!queue.pop().has_value());
      break;
    }
    if (!popped->has_value()) {
      if (!queue.enable_notification()) {
        break;
      }
      continue;
    }
    const ChainResult& chain = **popped;
    uint16_t head = 0;
    uint32_t used_len = 0;
    if (chain) {
      head = chain->head;
      check(head < queue_size);
      // Invariants devices rely on: readable first, every buffer inside RAM, totals add up.
      uint64_t readable = 0, writable = 0;
      for (size_t b = 0; b < chain->buffers.size(); ++b) {
        const Buffer& buf = chain->buffers[b];
        check(buf.writable == (b >= chain->readable_count));
        check(mem.slice(buf.gpa, buf.len).has_value());
        (buf.writable ? writable : readable) += buf.len;
      }
      check(readable == chain->readable_bytes && writable == chain->writable_bytes);
      check(readable + writable <= (uint64_t{1} << 32));
      check(chain->buffers.size() <= 2u * queue_size);
      used_len = static_cast<uint32_t>(std::min<uint64_t>(writable, UINT32_MAX));
    } else {
      head = chain.error().head;
      check(head < queue_size);
      check(!to_string(chain.error().kind).empty());
    }
    if (action & 0x20) {
      queue.undo_pop();
      (void)queue.pop();
    }
    queue.add_used(head, used_len);
    if (action & 0x40) {
      (void)queue.needs_notification();
    }
  }
  (void)queue.needs_notification();
  // State survives a round trip.
  auto restored = SplitQueue::restore(mem, queue.save());
  check(restored.has_value() && restored->save() == queue.save());
  return 0;
}
