#include <array>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include <catch2/catch.hpp>

#include "compute/devices/bus.hpp"
#include "compute/devices/pci/pci_root.hpp"
#include "compute/devices/pci/registers.hpp"
#include "compute/virtio/constants.hpp"
#include "compute/virtio/pci_transport.hpp"
#include "tests/fakes/fake_guest_memory.hpp"
#include "tests/fakes/fake_msi.hpp"
#include "tests/fakes/mock_split_queue.hpp"

using namespace hcnode;
using namespace hcnode::compute;
using namespace hcnode::compute::virtio;
namespace cc = hcnode::compute::virtio::common_cfg;

namespace {

constexpr uint64_t kDeviceFeatureBit5 = 1ull << 5;

// A block-typed device with two queues and an 8-byte config that records what the transport
// does to it.
class RecordingDevice final : public VirtioDevice {
 public:
  uint32_t device_type() const override { return kDeviceTypeBlock; }
  std::string name() const override { return "test0"; }
  uint64_t device_features() const override {
    // RING_PACKED is claimed but not implemented by the transport: it must not be offered.
    return kDeviceFeatureBit5 | kFeatureEventIdx | kFeatureRingPacked;
  }
  std::vector<uint16_t> queue_max_sizes() const override { return {128, 64}; }
  uint32_t config_size() const override { return 8; }
  void read_config(uint64_t offset, std::span<uint8_t> data) override {
    for (size_t i = 0; i < data.size(); ++i) {
      data[i] = offset + i < config.size() ? config[offset + i] : 0;
    }
  }
  void write_config(uint64_t offset, std::span<const uint8_t> data) override {
    for (size_t i = 0; i < data.size() && offset + i < config.size(); ++i) {
      config[offset + i] = data[i];
    }
  }
  Status activate(ActivationContext ctx) override {
    if (fail_activate) {
      return fail(EIO, "test: activation refused");
    }
    ++activations;
    context.emplace(std::move(ctx));
    return {};
  }
  void reset() override {
    ++resets;
    context.reset();
  }

  std::array<uint8_t, 8> config{1, 2, 3, 4, 5, 6, 7, 8};
  std::optional<ActivationContext> context;
  int activations = 0;
  int resets = 0;
  bool fail_activate = false;
};

struct TransportFixture {
  testing::FakeGuestMemory mem{1 << 20};
  testing::FakeMsiController irq;
  testing::FakeIoEventRegistrar io;
  std::shared_ptr<RecordingDevice> dev = std::make_shared<RecordingDevice>();
  std::shared_ptr<VirtioPciTransport> transport;
  std::shared_ptr<pci::PciRoot> root = std::make_shared<pci::PciRoot>();
  Bus mmio{"mmio"};
  uint8_t slot = 0;
  uint64_t bar = 0;

  explicit TransportFixture(bool with_ioevents = true) {
    auto created = VirtioPciTransport::create(dev, mem, irq, with_ioevents ? &io : nullptr);
    REQUIRE(created);
    transport = *created;
    auto s = root->add_device(transport);
    REQUIRE(s);
    slot = *s;
    REQUIRE(root->attach_bars(mmio));
    REQUIRE(transport->bar_base());
    bar = *transport->bar_base();
  }

  uint64_t rd(uint64_t offset, size_t width) {
    uint8_t b[8] = {};
    mmio.read(bar + offset, std::span<uint8_t>(b, width));
    uint64_t v = 0;
    for (size_t i = 0; i < width; ++i) {
      v |= static_cast<uint64_t>(b[i]) << (8 * i);
    }
    return v;
  }
  void wr(uint64_t offset, size_t width, uint64_t v) {
    uint8_t b[8];
    for (size_t i = 0; i < 8; ++i) {
      b[i] = static_cast<uint8_t>(v >> (8 * i));
    }
    mmio.write(bar + offset, std::span<const uint8_t>(b, width));
  }
  uint32_t cfg(uint16_t offset) { return root->config_read(slot, offset); }
  void cfg_write(uint16_t offset, size_t width, uint32_t v) {
    uint8_t b[4];
    for (size_t i = 0; i < 4; ++i) {
      b[i] = static_cast<uint8_t>(v >> (8 * i));
    }
    root->config_write(slot, offset, std::span<const uint8_t>(b, width));
  }
  uint8_t cfg8(uint16_t offset) { return static_cast<uint8_t>(cfg(offset) >> (8 * (offset & 3))); }

  // Capability offsets by (id, virtio cfg_type) — walking the list like a driver.
  std::map<std::pair<uint8_t, uint8_t>, uint8_t> capabilities() {
    std::map<std::pair<uint8_t, uint8_t>, uint8_t> out;
    uint8_t ptr = cfg8(pci::kRegCapabilitiesPointer);
    for (int guard = 0; ptr != 0 && guard < 48; ++guard) {
      const uint8_t id = cfg8(ptr);
      const uint8_t type = id == pci::kCapIdVendorSpecific ? cfg8(ptr + 3) : 0;
      out[{id, type}] = ptr;
      ptr = cfg8(ptr + 1);
    }
    return out;
  }
  uint8_t virtio_cap(uint8_t type) { return capabilities().at({pci::kCapIdVendorSpecific, type}); }
  uint8_t msix_cap() { return capabilities().at({pci::kCapIdMsix, 0}); }

  void enable_msix() { cfg_write(msix_cap() + 2, 2, pci::kMsixControlEnable); }
  void program_vector(uint16_t i, uint32_t data) {
    wr(kPciMsixTableOffset + 16ull * i + 0, 4, 0xFEE0'0000);
    wr(kPciMsixTableOffset + 16ull * i + 4, 4, 0);
    wr(kPciMsixTableOffset + 16ull * i + 8, 4, data);
    wr(kPciMsixTableOffset + 16ull * i + 12, 4, 0);  // unmask
  }

  void set_status(uint8_t s) { wr(cc::kDeviceStatus, 1, s); }
  uint8_t status() { return static_cast<uint8_t>(rd(cc::kDeviceStatus, 1)); }
  void write_driver_features(uint64_t f) {
    wr(cc::kDriverFeatureSelect, 4, 0);
    wr(cc::kDriverFeature, 4, static_cast<uint32_t>(f));
    wr(cc::kDriverFeatureSelect, 4, 1);
    wr(cc::kDriverFeature, 4, static_cast<uint32_t>(f >> 32));
  }
  // 3.1.1 steps 1-5.
  void negotiate(uint64_t features) {
    set_status(kStatusAcknowledge);
    set_status(kStatusAcknowledge | kStatusDriver);
    write_driver_features(features);
    set_status(kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  }
  void setup_queue(uint16_t index, const QueueConfig& q, uint16_t vector = kNoVector) {
    wr(cc::kQueueSelect, 2, index);
    wr(cc::kQueueSize, 2, q.size);
    wr(cc::kQueueDesc, 4, static_cast<uint32_t>(q.desc_table));
    wr(cc::kQueueDesc + 4, 4, static_cast<uint32_t>(q.desc_table >> 32));
    wr(cc::kQueueDriver, 8, q.avail_ring);  // a 64-bit access works too
    wr(cc::kQueueDevice, 4, static_cast<uint32_t>(q.used_ring));
    wr(cc::kQueueDevice + 4, 4, 0);
    wr(cc::kQueueMsixVector, 2, vector);
    wr(cc::kQueueEnable, 2, 1);
  }
  void driver_ok() {
    set_status(kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
  }
};

}  // namespace

TEST_CASE("virtio-pci transport: identity, BAR and capability list", "[virtio][pci]") {
  TransportFixture f;
  CHECK(f.cfg(0x00) == 0x1042'1AF4u);          // 0x1040 + block
  CHECK((f.cfg(0x08) & 0xFF) == 1u);           // revision 1: non-transitional
  CHECK(f.cfg(0x08) >> 8 == 0x01'80'00u);      // mass storage, other
  CHECK(f.cfg(0x2C) == 0x0042'1AF4u);          // subsystem >= 0x40
  CHECK((f.cfg(0x10) & 0xF) == pci::kBarMemType64);  // 64-bit, not prefetchable
  CHECK(f.bar % kPciBarSize == 0);
  CHECK(f.bar >= pci::kPciMmioWindowStart);
  CHECK(f.transport->name() == "virtio-test0");

  auto caps = f.capabilities();
  CHECK(caps.size() == 6);  // MSI-X + common, notify, ISR, device, PCI_CFG
  const uint8_t msix = f.msix_cap();
  CHECK((f.cfg(msix) >> 16 & pci::kMsixControlTableSizeMask) == 2u);  // 3 vectors
  CHECK(f.cfg(msix + 4) == kPciMsixTableOffset);                       // BIR 0
  CHECK(f.cfg(msix + 8) == kPciMsixPbaOffset);
  struct Expect {
    uint8_t type;
    uint64_t offset;
    uint32_t length;
  };
  for (const auto& e : {Expect{kPciCapCommonCfg, kPciCommonCfgOffset, kPciCommonCfgLength},
                        Expect{kPciCapNotifyCfg, kPciNotifyOffset, 2 * 4},
                        Expect{kPciCapIsrCfg, kPciIsrOffset, 1},
                        Expect{kPciCapDeviceCfg, kPciDeviceCfgOffset, 8}}) {
    const uint8_t at = f.virtio_cap(e.type);
    CHECK(f.cfg8(at + 4) == 0);  // BAR0
    CHECK(f.cfg(at + 8) == e.offset);
    CHECK(f.cfg(at + 12) == e.length);
  }
  CHECK(f.cfg(f.virtio_cap(kPciCapNotifyCfg) + 16) == kPciNotifyOffMultiplier);
  CHECK(f.cfg8(f.virtio_cap(kPciCapPciCfg) + 2) == 20);  // cap_len includes pci_cfg_data
}

TEST_CASE("virtio-pci transport: feature negotiation through the select registers",
          "[virtio][pci]") {
  TransportFixture f;
  f.wr(cc::kDeviceFeatureSelect, 4, 0);
  CHECK(f.rd(cc::kDeviceFeature, 4) == (kDeviceFeatureBit5 | kFeatureEventIdx));
  f.wr(cc::kDeviceFeatureSelect, 4, 1);
  CHECK(f.rd(cc::kDeviceFeature, 4) == 1u);  // VERSION_1 only; RING_PACKED filtered out
  f.wr(cc::kDeviceFeatureSelect, 4, 2);
  CHECK(f.rd(cc::kDeviceFeature, 4) == 0u);
  CHECK(f.rd(cc::kNumQueues, 2) == 2u);

  f.write_driver_features(kFeatureVersion1 | kDeviceFeatureBit5);
  f.wr(cc::kDriverFeatureSelect, 4, 0);
  CHECK(f.rd(cc::kDriverFeature, 4) == kDeviceFeatureBit5);
  f.wr(cc::kDriverFeatureSelect, 4, 1);
  CHECK(f.rd(cc::kDriverFeature, 4) == 1u);
  CHECK(f.transport->driver_features() == (kFeatureVersion1 | kDeviceFeatureBit5));
  // A wrong-width write to a feature register is ignored.
  f.wr(cc::kDriverFeature, 2, 0);
  CHECK(f.transport->driver_features() == (kFeatureVersion1 | kDeviceFeatureBit5));
}

TEST_CASE("virtio-pci transport: FEATURES_OK is refused for bad feature sets", "[virtio][pci]") {
  TransportFixture f;
  SECTION("VERSION_1 missing (a legacy driver)") {
    f.negotiate(kDeviceFeatureBit5);
    CHECK((f.status() & kStatusFeaturesOk) == 0);
  }
  SECTION("a feature that was not offered") {
    f.negotiate(kFeatureVersion1 | (1ull << 7));
    CHECK((f.status() & kStatusFeaturesOk) == 0);
  }
  SECTION("a reserved feature the device claimed but the transport filters") {
    f.negotiate(kFeatureVersion1 | kFeatureRingPacked);
    CHECK((f.status() & kStatusFeaturesOk) == 0);
  }
  SECTION("a valid set is accepted and then frozen") {
    f.negotiate(kFeatureVersion1 | kFeatureEventIdx);
    CHECK(f.status() == (kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk));
    f.write_driver_features(kFeatureVersion1 | kDeviceFeatureBit5);
    CHECK(f.transport->driver_features() == (kFeatureVersion1 | kFeatureEventIdx));
  }
  SECTION("DRIVER_OK without FEATURES_OK is ignored; clearing bits is ignored") {
    f.set_status(kStatusAcknowledge | kStatusDriver);
    f.set_status(kStatusAcknowledge | kStatusDriver | kStatusDriverOk);
    CHECK(f.status() == (kStatusAcknowledge | kStatusDriver));
    f.set_status(kStatusAcknowledge);
    CHECK(f.status() == (kStatusAcknowledge | kStatusDriver));
    f.set_status(kStatusAcknowledge | kStatusDriver | kStatusDeviceNeedsReset);
    CHECK(f.status() == (kStatusAcknowledge | kStatusDriver));
    CHECK(f.dev->activations == 0);
  }
}

TEST_CASE("virtio-pci transport: queue configuration, enable and activation", "[virtio][pci]") {
  TransportFixture f;
  testing::MockSplitQueue driver(f.mem, 64);
  f.negotiate(kFeatureVersion1 | kFeatureEventIdx);

  f.wr(cc::kQueueSelect, 2, 0);
  CHECK(f.rd(cc::kQueueSize, 2) == 128u);  // the maximum until the driver shrinks it
  CHECK(f.rd(cc::kQueueNotifyOff, 2) == 0u);
  f.wr(cc::kQueueSize, 2, 100);  // not a power of two: ignored
  CHECK(f.rd(cc::kQueueSize, 2) == 128u);
  f.wr(cc::kQueueSize, 2, 256);  // above the maximum: ignored
  CHECK(f.rd(cc::kQueueSize, 2) == 128u);
  f.wr(cc::kQueueSelect, 2, 1);
  CHECK(f.rd(cc::kQueueSize, 2) == 64u);
  CHECK(f.rd(cc::kQueueNotifyOff, 2) == 1u);
  f.wr(cc::kQueueSelect, 2, 7);  // no such queue
  CHECK(f.rd(cc::kQueueSize, 2) == 0u);
  f.wr(cc::kQueueEnable, 2, 1);  // ignored, no crash

  f.setup_queue(0, driver.config());
  f.wr(cc::kQueueSelect, 2, 0);
  CHECK(f.rd(cc::kQueueSize, 2) == 64u);
  CHECK(f.rd(cc::kQueueEnable, 2) == 1u);
  CHECK(f.rd(cc::kQueueDesc, 8) == driver.desc_addr());
  CHECK(f.rd(cc::kQueueDriver, 4) == driver.avail_addr());
  CHECK(f.rd(cc::kQueueDevice, 4) == driver.used_addr());
  // Once enabled, the queue's configuration is frozen.
  f.wr(cc::kQueueSize, 2, 32);
  f.wr(cc::kQueueDesc, 4, 0x5000);
  CHECK(f.rd(cc::kQueueSize, 2) == 64u);
  CHECK(f.rd(cc::kQueueDesc, 4) == driver.desc_addr());

  f.driver_ok();
  CHECK((f.status() & kStatusDriverOk) != 0);
  CHECK(f.transport->device_active());
  REQUIRE(f.dev->activations == 1);
  const ActivationContext& ctx = *f.dev->context;
  CHECK(ctx.features == (kFeatureVersion1 | kFeatureEventIdx));
  REQUIRE(ctx.queues.size() == 1);  // queue 1 was never enabled
  CHECK(ctx.queues[0].index == 0);
  CHECK(ctx.queues[0].queue.size() == 64);
  CHECK(ctx.queues[0].queue.event_idx_enabled());
  CHECK(ctx.memory == &f.mem);
  // One ioeventfd, at queue 0's notify address.
  const auto regs = f.io.active();
  REQUIRE(regs.size() == 1);
  CHECK(regs[0].addr == f.bar + kPciNotifyOffset);
  CHECK(regs[0].len == kPciNotifyWidth);
  CHECK(regs[0].fd == ctx.queues[0].notifier->fd());
  // Queue registers are read-only after DRIVER_OK.
  f.wr(cc::kQueueSelect, 2, 1);
  f.wr(cc::kQueueEnable, 2, 1);
  CHECK(f.rd(cc::kQueueEnable, 2) == 0u);
}

TEST_CASE("virtio-pci transport: a bad queue at DRIVER_OK sets DEVICE_NEEDS_RESET",
          "[virtio][pci]") {
  TransportFixture f;
  f.enable_msix();
  f.program_vector(2, 0x52);
  f.wr(cc::kConfigMsixVector, 2, 2);
  CHECK(f.rd(cc::kConfigMsixVector, 2) == 2u);
  f.negotiate(kFeatureVersion1);
  QueueConfig bad{16, true, 0x1008, 0x2000, 0x3000};  // descriptor table not 16-aligned
  f.setup_queue(0, bad);

  f.driver_ok();
  CHECK((f.status() & kStatusDeviceNeedsReset) != 0);
  CHECK_FALSE(f.transport->device_active());
  CHECK(f.dev->activations == 0);
  CHECK(f.io.active().empty());
  CHECK(f.irq.vector(2)->triggers == 1);  // configuration change interrupt
  CHECK(f.rd(kPciIsrOffset, 1) == 2u);    // ISR: config bit, cleared by the read
  CHECK(f.rd(kPciIsrOffset, 1) == 0u);

  SECTION("a device whose activation fails does the same") {
    f.set_status(0);
    f.dev->fail_activate = true;
    testing::MockSplitQueue driver(f.mem, 16);
    f.negotiate(kFeatureVersion1);
    f.setup_queue(0, driver.config());
    f.driver_ok();
    CHECK((f.status() & kStatusDeviceNeedsReset) != 0);
    CHECK(f.io.active().empty());
  }
}

TEST_CASE("virtio-pci transport: writing 0 to device_status resets everything",
          "[virtio][pci]") {
  TransportFixture f;
  testing::MockSplitQueue driver(f.mem, 32);
  f.negotiate(kFeatureVersion1);
  f.setup_queue(0, driver.config(), 0);
  f.wr(cc::kConfigMsixVector, 2, 2);
  f.driver_ok();
  REQUIRE(f.transport->device_active());
  REQUIRE(f.io.active().size() == 1);

  f.set_status(0);
  CHECK(f.status() == 0);
  CHECK(f.dev->resets >= 1);
  CHECK_FALSE(f.dev->context);
  CHECK_FALSE(f.transport->device_active());
  CHECK(f.io.active().empty());
  CHECK(f.transport->driver_features() == 0);
  f.wr(cc::kQueueSelect, 2, 0);
  CHECK(f.rd(cc::kQueueEnable, 2) == 0u);
  CHECK(f.rd(cc::kQueueSize, 2) == 128u);
  CHECK(f.rd(cc::kQueueDesc, 8) == 0u);
  CHECK(f.rd(cc::kQueueMsixVector, 2) == kNoVector);
  CHECK(f.rd(cc::kConfigMsixVector, 2) == kNoVector);

  // And the device can be brought up again.
  f.negotiate(kFeatureVersion1);
  f.setup_queue(0, driver.config());
  f.driver_ok();
  CHECK(f.dev->activations == 2);
  CHECK(f.io.active().size() == 1);
}

TEST_CASE("virtio-pci transport: notify writes signal the queue's eventfd without ioeventfd",
          "[virtio][pci]") {
  SECTION("no IoEventRegistrar at all") {
    TransportFixture f(/*with_ioevents=*/false);
    testing::MockSplitQueue driver(f.mem, 16);
    f.negotiate(kFeatureVersion1);
    f.setup_queue(0, driver.config());
    f.driver_ok();
    REQUIRE(f.dev->context);
    const auto& notifier = f.dev->context->queues[0].notifier;
    CHECK(*notifier->consume() == 0u);
    f.wr(kPciNotifyOffset + 0, 2, 0);
    CHECK(*notifier->consume() == 1u);
    f.wr(kPciNotifyOffset + 2, 2, 0);  // not a queue's notify address
    f.wr(kPciNotifyOffset + 4 * 200, 2, 0);
    CHECK(*notifier->consume() == 0u);
    f.wr(kPciNotifyOffset + 0, 4, 0);  // other widths reach the same queue
    CHECK(*notifier->consume() == 1u);
  }
  SECTION("registration refused by KVM: same fallback") {
    TransportFixture f;
    f.io.set_fail(true);
    testing::MockSplitQueue driver(f.mem, 16);
    f.negotiate(kFeatureVersion1);
    f.setup_queue(0, driver.config());
    f.driver_ok();
    REQUIRE(f.transport->device_active());
    CHECK(f.io.active().empty());
    f.wr(kPciNotifyOffset, 2, 0);
    CHECK(*f.dev->context->queues[0].notifier->consume() == 1u);
  }
}

TEST_CASE("virtio-pci transport: queue interrupts use the queue's MSI-X vector",
          "[virtio][pci]") {
  TransportFixture f;
  testing::MockSplitQueue q0(f.mem, 16, 0x1000), q1(f.mem, 16, 0x8000);
  f.enable_msix();
  f.program_vector(0, 0x40);
  f.program_vector(1, 0x41);
  f.wr(cc::kConfigMsixVector, 2, 0);
  f.negotiate(kFeatureVersion1);
  f.setup_queue(0, q0.config(), 1);
  f.setup_queue(1, q1.config(), 1);  // vectors may be shared
  f.wr(cc::kQueueSelect, 2, 1);
  f.wr(cc::kQueueMsixVector, 2, 99);  // beyond the table: reads back NO_VECTOR
  CHECK(f.rd(cc::kQueueMsixVector, 2) == kNoVector);
  f.driver_ok();
  REQUIRE(f.dev->context);
  auto& interrupt = *f.dev->context->interrupt;

  interrupt.notify_queue(0);
  CHECK(f.irq.vector(1)->triggers == 1);
  CHECK(f.irq.vector(1)->last_message() == MsiMessage{0xFEE0'0000, 0x41});
  interrupt.notify_queue(1);  // NO_VECTOR: nothing sent
  interrupt.notify_queue(9);  // no such queue
  CHECK(f.irq.vector(1)->triggers == 1);
  CHECK(f.rd(kPciIsrOffset, 1) == 1u);
  CHECK(f.rd(kPciIsrOffset, 1) == 0u);

  const auto generation = f.rd(cc::kConfigGeneration, 1);
  interrupt.notify_config();
  CHECK(f.rd(cc::kConfigGeneration, 1) == ((generation + 1) & 0xFF));
  CHECK(f.irq.vector(0)->triggers == 1);

  // Masking the entry makes the next interrupt pending; unmasking delivers it.
  f.wr(kPciMsixTableOffset + 16 + 12, 4, 1);
  interrupt.notify_queue(0);
  CHECK(f.irq.vector(1)->triggers == 1);
  CHECK(f.rd(kPciMsixPbaOffset, 8) == 0b10u);
  f.wr(kPciMsixTableOffset + 16 + 12, 4, 0);
  CHECK(f.irq.vector(1)->triggers == 2);
  // Function mask through the capability.
  f.cfg_write(f.msix_cap() + 2, 2, pci::kMsixControlEnable | pci::kMsixControlFunctionMask);
  interrupt.notify_queue(0);
  CHECK(f.irq.vector(1)->triggers == 2);
  f.cfg_write(f.msix_cap() + 2, 2, pci::kMsixControlEnable);
  CHECK(f.irq.vector(1)->triggers == 3);
}

TEST_CASE("virtio-pci transport: device config window", "[virtio][pci]") {
  TransportFixture f;
  CHECK(f.rd(kPciDeviceCfgOffset, 4) == 0x0403'0201u);
  CHECK(f.rd(kPciDeviceCfgOffset + 4, 2) == 0x0605u);
  f.wr(kPciDeviceCfgOffset + 1, 1, 0xAB);
  CHECK(f.dev->config[1] == 0xAB);
  CHECK(f.rd(kPciDeviceCfgOffset + 6, 4) == 0u);  // runs past the 8-byte config: zero
  f.wr(kPciDeviceCfgOffset + 6, 4, 0xFFFF'FFFF);  // ignored
  CHECK(f.dev->config[6] == 7);
}

TEST_CASE("virtio-pci transport: the PCI_CFG capability is a window into BAR0",
          "[virtio][pci]") {
  TransportFixture f;
  const uint8_t cap = f.virtio_cap(kPciCapPciCfg);
  // Read num_queues (2 bytes at 0x12) through configuration space.
  f.cfg_write(cap + 4, 1, 0);  // bar
  f.cfg_write(cap + 8, 4, cc::kNumQueues);
  f.cfg_write(cap + 12, 4, 2);
  CHECK((f.cfg(cap + 16) & 0xFFFF) == 2u);
  // Write device_status through it.
  f.cfg_write(cap + 8, 4, cc::kDeviceStatus);
  f.cfg_write(cap + 12, 4, 1);
  f.cfg_write(cap + 16, 1, kStatusAcknowledge);
  CHECK(f.status() == kStatusAcknowledge);
  // Nonsense windows are ignored without harm.
  for (uint32_t len : {0u, 3u, 8u}) {
    f.cfg_write(cap + 12, 4, len);
    (void)f.cfg(cap + 16);
    f.cfg_write(cap + 16, 4, 0);
  }
  f.cfg_write(cap + 12, 4, 4);
  f.cfg_write(cap + 8, 4, 0x7FFE);  // misaligned and crossing the end
  (void)f.cfg(cap + 16);
  f.cfg_write(cap + 8, 4, 0xFFFF'FFFC);
  (void)f.cfg(cap + 16);
  f.cfg_write(cap + 4, 1, 3);  // another BAR
  (void)f.cfg(cap + 16);
  CHECK(f.status() == kStatusAcknowledge);
}

TEST_CASE("virtio-pci transport: moving BAR0 moves the ioeventfds", "[virtio][pci]") {
  TransportFixture f;
  testing::MockSplitQueue driver(f.mem, 16);
  f.negotiate(kFeatureVersion1);
  f.setup_queue(0, driver.config());
  f.driver_ok();
  REQUIRE(f.io.active().size() == 1);

  f.cfg_write(pci::kRegCommand, 2, 0);  // decoding off: unmapped, ioeventfds gone
  CHECK(f.io.active().empty());
  CHECK_FALSE(f.transport->bar_base());
  f.cfg_write(pci::kRegBar0, 4, 0xD000'0000);
  f.cfg_write(pci::kRegBar0 + 4, 4, 0);
  f.cfg_write(pci::kRegCommand, 2, pci::kCommandMemorySpace);
  REQUIRE(f.transport->bar_base() == 0xD000'0000u);
  const auto regs = f.io.active();
  REQUIRE(regs.size() == 1);
  CHECK(regs[0].addr == 0xD000'0000u + kPciNotifyOffset);
  f.bar = 0xD000'0000;
  CHECK(f.rd(cc::kNumQueues, 2) == 2u);
}

TEST_CASE("virtio-pci transport: hostile accesses of every width anywhere in BAR0",
          "[virtio][pci]") {
  TransportFixture f;
  testing::MockSplitQueue driver(f.mem, 16);
  f.negotiate(kFeatureVersion1);
  f.setup_queue(0, driver.config());
  f.enable_msix();
  for (uint64_t offset = 0; offset < kPciBarSize; offset += (offset < 0x80 ? 1 : 0x3F)) {
    for (size_t width : {1u, 2u, 3u, 4u, 8u}) {
      (void)f.rd(offset, width);
      f.wr(offset, width, 0xFFFF'FFFF'FFFF'FFFFull);
      f.wr(offset, width, 0);
    }
  }
  // Reads straddling the end of the BAR and big reads.
  uint8_t big[64];
  f.transport->read(kPciBarSize - 4, big);
  f.transport->write(kPciBarSize - 4, big);
  f.transport->read(kPciBarSize + 100, std::span<uint8_t>(big, 4));
  f.transport->write(~0ull - 2, std::span<uint8_t>(big, 4));
  // Every configuration register, every width.
  for (uint16_t off = 0; off < 256; ++off) {
    for (size_t width : {1u, 2u, 4u}) {
      if ((off & 3u) + width <= 4) {
        (void)f.cfg(off);
        f.cfg_write(off, width, 0xFFFF'FFFF);
      }
    }
  }
  // Put BAR0 and decoding back (the loop sized the BAR), then reset: still a working device.
  f.cfg_write(pci::kRegBar0, 4, static_cast<uint32_t>(f.bar));
  f.cfg_write(pci::kRegBar0 + 4, 4, static_cast<uint32_t>(f.bar >> 32));
  f.cfg_write(pci::kRegCommand, 2, pci::kCommandMemorySpace);
  REQUIRE(f.transport->bar_base() == f.bar);
  f.set_status(0);
  f.negotiate(kFeatureVersion1);
  CHECK((f.status() & kStatusFeaturesOk) != 0);
}
