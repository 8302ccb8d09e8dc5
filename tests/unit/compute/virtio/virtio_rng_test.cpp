#include <sys/eventfd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "compute/devices/bus.hpp"
#include "compute/devices/pci/pci_root.hpp"
#include "compute/devices/virtio_rng/virtio_rng.hpp"
#include "compute/virtio/constants.hpp"
#include "compute/virtio/pci_transport.hpp"
#include "tests/fakes/fake_guest_memory.hpp"
#include "tests/fakes/recording_interrupt.hpp"
#include "tests/fakes/fake_msi.hpp"
#include "tests/fakes/mock_split_queue.hpp"

using namespace hcnode;
using namespace hcnode::compute;
using namespace hcnode::compute::virtio;
namespace cc = hcnode::compute::virtio::common_cfg;
using hcnode::testing::FakeGuestMemory;
using hcnode::testing::RecordingInterrupt;
using hcnode::testing::wait_until;
using hcnode::testing::MockSplitQueue;

namespace {

// The rng device activated directly (no transport), the test playing driver and transport.
struct DirectRng {
  FakeGuestMemory mem{4 << 20};
  MockSplitQueue driver{mem, 16};
  std::shared_ptr<RecordingInterrupt> interrupt = std::make_shared<RecordingInterrupt>();
  std::shared_ptr<EventFd> notifier;
  VirtioRng rng{"rng-test"};

  DirectRng() {
    auto fd = EventFd::create(EFD_NONBLOCK);
    REQUIRE(fd);
    notifier = std::make_shared<EventFd>(std::move(*fd));
    REQUIRE(rng.activate(context()));
  }
  ActivationContext context() {
    ActivationContext ctx;
    ctx.memory = &mem;
    ctx.features = kFeatureVersion1;
    auto queue = SplitQueue::create(mem, driver.config(), ctx.features);
    REQUIRE(queue);
    ctx.queues.push_back(ActiveQueue{0, std::move(*queue), notifier});
    ctx.interrupt = interrupt;
    return ctx;
  }
  void kick() { REQUIRE(notifier->signal()); }
  bool used(uint16_t n) {
    return wait_until([&] { return driver.used_idx() == n; });
  }
};

bool all_zero(const uint8_t* p, size_t n) {
  return std::all_of(p, p + n, [](uint8_t b) { return b == 0; });
}

}  // namespace

TEST_CASE("virtio-rng end to end over virtio-pci: a 64-byte buffer comes back random",
          "[virtio][rng]") {
  FakeGuestMemory mem(1 << 20);
  testing::FakeMsiController irq;
  auto rng = std::make_shared<VirtioRng>("rng0");
  CHECK(rng->device_type() == kDeviceTypeEntropy);
  // No IoEventRegistrar: every notify takes the MMIO exit path (fallback).
  auto transport = VirtioPciTransport::create(rng, mem, irq, nullptr);
  REQUIRE(transport);
  auto root = std::make_shared<pci::PciRoot>();
  Bus mmio("mmio");
  REQUIRE(root->add_device(*transport));
  REQUIRE(root->attach_bars(mmio));
  const uint64_t bar = *(*transport)->bar_base();
  CHECK(root->config_read(1, 0) == 0x1044'1AF4u);  // virtio entropy device

  auto w = [&](uint64_t off, size_t width, uint64_t v) {
    uint8_t b[8];
    for (size_t i = 0; i < 8; ++i) {
      b[i] = static_cast<uint8_t>(v >> (8 * i));
    }
    mmio.write(bar + off, std::span<const uint8_t>(b, width));
  };
  auto r = [&](uint64_t off, size_t width) {
    uint8_t b[8] = {};
    mmio.read(bar + off, std::span<uint8_t>(b, width));
    uint64_t v = 0;
    for (size_t i = 0; i < width; ++i) {
      v |= static_cast<uint64_t>(b[i]) << (8 * i);
    }
    return v;
  };

  // MSI-X on, vector 1 for the queue (as Linux: enable, program, unmask).
  uint8_t msix = 0;
  for (uint8_t p = static_cast<uint8_t>(root->config_read(1, 0x34)); p != 0;
       p = static_cast<uint8_t>(root->config_read(1, p) >> 8)) {
    if ((root->config_read(1, p) & 0xFF) == pci::kCapIdMsix) {
      msix = p;
    }
  }
  REQUIRE(msix != 0);
  const uint8_t enable[2] = {0x00, 0x80};
  root->config_write(1, msix + 2, enable);
  w(kPciMsixTableOffset + 16, 4, 0xFEE0'0000);
  w(kPciMsixTableOffset + 16 + 8, 4, 0x45);
  w(kPciMsixTableOffset + 16 + 12, 4, 0);

  // 3.1.1 initialization.
  w(cc::kDeviceStatus, 1, kStatusAcknowledge | kStatusDriver);
  w(cc::kDeviceFeatureSelect, 4, 1);
  CHECK(r(cc::kDeviceFeature, 4) == 1u);  // VERSION_1
  w(cc::kDeviceFeatureSelect, 4, 0);
  CHECK(r(cc::kDeviceFeature, 4) == 0u);  // nothing else
  w(cc::kDriverFeatureSelect, 4, 1);
  w(cc::kDriverFeature, 4, 1);
  w(cc::kDeviceStatus, 1, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  REQUIRE((r(cc::kDeviceStatus, 1) & kStatusFeaturesOk) != 0);
  MockSplitQueue driver(mem, 16);
  w(cc::kQueueSelect, 2, 0);
  CHECK(r(cc::kQueueSize, 2) == VirtioRng::kQueueSize);
  w(cc::kQueueSize, 2, 16);
  w(cc::kQueueDesc, 8, driver.desc_addr());
  w(cc::kQueueDriver, 8, driver.avail_addr());
  w(cc::kQueueDevice, 8, driver.used_addr());
  w(cc::kQueueMsixVector, 2, 1);
  w(cc::kQueueEnable, 2, 1);
  w(cc::kDeviceStatus, 1,
    kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
  REQUIRE((*transport)->device_active());

  const uint64_t buf = driver.alloc(64);
  const uint16_t head = driver.add_chain({{buf, 64, true}});
  w(kPciNotifyOffset + 0, 2, 0);  // notify queue 0

  REQUIRE(wait_until([&] { return driver.used_idx() == 1; }));
  CHECK(driver.used_elem(0).id == head);
  CHECK(driver.used_elem(0).len == 64);
  CHECK_FALSE(all_zero(mem.host(buf), 64));
  CHECK(wait_until([&] { return irq.vector(1)->triggers.load() >= 1; }));
  CHECK(irq.vector(1)->last_message() == MsiMessage{0xFEE0'0000, 0x45});
  CHECK(rng->bytes_served() == 64);

  // A second request, then reset: the worker stops and the queue is gone.
  const uint64_t buf2 = driver.alloc(32);
  driver.add_chain({{buf2, 16, true}, {buf2 + 16, 16, true}});
  w(kPciNotifyOffset, 2, 0);
  REQUIRE(wait_until([&] { return driver.used_idx() == 2; }));
  CHECK(driver.used_elem(1).len == 32);
  w(cc::kDeviceStatus, 1, 0);
  CHECK(r(cc::kDeviceStatus, 1) == 0u);
  CHECK_FALSE((*transport)->device_active());
}

TEST_CASE("virtio-rng: malformed chains complete with length 0, a broken ring needs reset",
          "[virtio][rng]") {
  DirectRng f;
  const uint64_t buf = f.driver.alloc(64);
  // Readable after writable: refused by the walker, returned empty.
  const uint16_t bad = f.driver.add_chain({{buf, 8, true}, {buf + 8, 8, false}});
  // A buffer outside guest RAM.
  const uint16_t outside = f.driver.add_chain({{(4 << 20) - 4, 64, true}});
  // And a good one behind them.
  const uint16_t good = f.driver.add_chain({{buf + 16, 48, true}});
  f.kick();
  REQUIRE(f.used(3));
  CHECK(f.driver.used_elem(0).id == bad);
  CHECK(f.driver.used_elem(0).len == 0u);
  CHECK(f.driver.used_elem(1).id == outside);
  CHECK(f.driver.used_elem(1).len == 0u);
  CHECK(f.driver.used_elem(2).id == good);
  CHECK(f.driver.used_elem(2).len == 48u);
  CHECK(f.rng.bad_chains() == 2);
  CHECK(f.interrupt->queue_notifications >= 1);
  CHECK_FALSE(f.interrupt->needs_reset);

  // The avail index jumps far ahead: DEVICE_NEEDS_RESET, and the queue is left alone.
  f.driver.set_avail_idx(static_cast<uint16_t>(f.driver.avail_idx() + 100));
  f.kick();
  REQUIRE(wait_until([&] { return f.interrupt->needs_reset.load(); }));
  CHECK(f.driver.used_idx() == 3);
  f.rng.reset();
}

TEST_CASE("virtio-rng: large requests are capped and readable buffers are not touched",
          "[virtio][rng]") {
  DirectRng f;
  const uint64_t header = f.driver.alloc(16);
  const uint64_t big = f.driver.alloc(VirtioRng::kMaxBytesPerRequest * 2);
  f.driver.add_chain({{header, 16, false}, {big, VirtioRng::kMaxBytesPerRequest * 2, true}});
  f.kick();
  REQUIRE(f.used(1));
  CHECK(f.driver.used_elem(0).len == VirtioRng::kMaxBytesPerRequest);
  CHECK(all_zero(f.mem.host(header), 16));
  CHECK(all_zero(f.mem.host(big + VirtioRng::kMaxBytesPerRequest), 4096));
  CHECK_FALSE(all_zero(f.mem.host(big), 64));
}

TEST_CASE("virtio-rng: a short entropy source reports only the bytes written",
          "[virtio][rng]") {
  FakeGuestMemory mem(1 << 20);
  MockSplitQueue driver(mem, 8);
  auto fd = EventFd::create(EFD_NONBLOCK);
  REQUIRE(fd);
  auto notifier = std::make_shared<EventFd>(std::move(*fd));
  // Gives at most 10 bytes per call, then fails on the next buffer.
  int calls = 0;
  VirtioRng rng("rng-short", [&calls](std::span<uint8_t> out) -> Result<size_t> {
    if (++calls > 1) {
      return fail(EIO, "test: no entropy");
    }
    const size_t n = std::min<size_t>(out.size(), 10);
    std::fill_n(out.begin(), n, 0x5A);
    return n;
  });
  ActivationContext ctx;
  ctx.memory = &mem;
  auto queue = SplitQueue::create(mem, driver.config(), 0);
  REQUIRE(queue);
  ctx.queues.push_back(ActiveQueue{0, std::move(*queue), notifier});
  ctx.interrupt = std::make_shared<RecordingInterrupt>();
  REQUIRE(rng.activate(std::move(ctx)));
  const uint64_t buf = driver.alloc(64);
  driver.add_chain({{buf, 32, true}});
  driver.add_chain({{buf + 32, 32, true}});
  REQUIRE(notifier->signal());
  REQUIRE(wait_until([&] { return driver.used_idx() == 2; }));
  CHECK(driver.used_elem(0).len == 10u);
  CHECK(driver.used_elem(1).len == 0u);
  rng.reset();
}

TEST_CASE("virtio-rng: pause stops serving, resume catches up", "[virtio][rng]") {
  DirectRng f;
  REQUIRE(f.rng.pause());
  const uint64_t buf = f.driver.alloc(16);
  f.driver.add_chain({{buf, 16, true}});
  f.kick();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(f.driver.used_idx() == 0);
  REQUIRE(f.rng.resume());
  REQUIRE(f.used(1));
  CHECK(f.driver.used_elem(0).len == 16u);
  REQUIRE(f.rng.resume());  // not paused: nothing to do
}

TEST_CASE("virtio-rng: activation needs queue 0 and happens once", "[virtio][rng]") {
  DirectRng f;
  CHECK(f.rng.activate(f.context()).error().code() == EBUSY);
  f.rng.reset();
  f.rng.reset();  // idempotent
  ActivationContext empty;
  empty.memory = &f.mem;
  empty.interrupt = f.interrupt;
  CHECK(f.rng.activate(std::move(empty)).error().code() == EINVAL);
  ActivationContext no_memory = f.context();
  no_memory.memory = nullptr;
  CHECK(f.rng.activate(std::move(no_memory)).error().code() == EINVAL);
  // After a reset it can be activated again and serves requests.
  REQUIRE(f.rng.activate(f.context()));
  const uint64_t buf = f.driver.alloc(8);
  f.driver.add_chain({{buf, 8, true}});
  f.kick();
  REQUIRE(f.used(1));
}
