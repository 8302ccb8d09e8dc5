#include <memory>
#include <vector>

#include <catch2/catch.hpp>

#include "compute/devices/bus.hpp"
#include "compute/devices/pci/bar_allocator.hpp"
#include "compute/devices/pci/pci_root.hpp"

using namespace hcnode;
using namespace hcnode::compute;
using namespace hcnode::compute::pci;

namespace {

// Answers BAR reads with a tag so a test can tell which BAR a bus address reached.
struct TaggedBar final : BusDevice {
  explicit TaggedBar(uint8_t t) : tag(t) {}
  uint8_t tag;
  void read(uint64_t, std::span<uint8_t> data) override {
    for (auto& b : data) {
      b = tag;
    }
  }
  void write(uint64_t, std::span<const uint8_t>) override {}
};

class TestPciDevice final : public PciDevice {
 public:
  explicit TestPciDevice(std::vector<BarDescription> bars, uint8_t tag_base = 0)
      : config_(PciIds{0x1234, 0x5678, 2, 0x02'00'00, 0x1234, 0x0001}) {
    for (const auto& bar : bars) {
      REQUIRE(config_.add_bar(bar));
      handlers_[bar.index] =
          std::make_shared<TaggedBar>(static_cast<uint8_t>(tag_base + bar.index));
    }
  }
  std::string name() const override { return "test"; }
  uint32_t config_read(uint16_t offset) override { return config_.read(offset); }
  std::vector<BarChange> config_write(uint16_t offset, std::span<const uint8_t> data) override {
    return config_.write(offset, data);
  }
  std::vector<BarDescription> bars() const override { return config_.bars(); }
  std::shared_ptr<BusDevice> bar_handler(uint8_t index) override {
    return index < kBarCount ? handlers_[index] : nullptr;
  }
  PciConfigSpace& config() { return config_; }

 private:
  PciConfigSpace config_;
  std::array<std::shared_ptr<BusDevice>, kBarCount> handlers_{};
};

// Port I/O through the PIO bus, as a vCPU exit would do it.
struct Ports {
  Bus pio{"pio"};
  std::shared_ptr<PciRoot> root = std::make_shared<PciRoot>();
  Ports() { REQUIRE(pio.insert(PciRoot::kConfigPorts, PciRoot::kConfigPortsLen, root)); }

  uint32_t in(uint16_t port, size_t width) {
    uint8_t b[4] = {};
    pio.read(port, std::span<uint8_t>(b, width));
    uint32_t v = 0;
    for (size_t i = 0; i < width; ++i) {
      v |= static_cast<uint32_t>(b[i]) << (8 * i);
    }
    return v;
  }
  void out(uint16_t port, size_t width, uint32_t v) {
    uint8_t b[4];
    for (size_t i = 0; i < 4; ++i) {
      b[i] = static_cast<uint8_t>(v >> (8 * i));
    }
    pio.write(port, std::span<const uint8_t>(b, width));
  }
  uint32_t inl(uint16_t p) { return in(p, 4); }
  uint32_t inw(uint16_t p) { return in(p, 2); }
  uint32_t inb(uint16_t p) { return in(p, 1); }
  void outl(uint16_t p, uint32_t v) { out(p, 4, v); }
  void outw(uint16_t p, uint32_t v) { out(p, 2, v); }
  void outb(uint16_t p, uint32_t v) { out(p, 1, v); }

  static uint32_t address(uint32_t bus, uint32_t dev, uint32_t fn, uint32_t reg) {
    return PciRoot::kAddressEnable | bus << 16 | dev << 11 | fn << 8 | reg;
  }
  uint32_t config_read(uint32_t dev, uint32_t reg, uint32_t fn = 0, uint32_t bus = 0) {
    outl(0xCF8, address(bus, dev, fn, reg));
    return inl(0xCFC);
  }
  void config_write(uint32_t dev, uint32_t reg, uint32_t v) {
    outl(0xCF8, address(0, dev, 0, reg));
    outl(0xCFC, v);
  }
};

}  // namespace

TEST_CASE("pci root: configuration mechanism #1 reaches the host bridge", "[pci]") {
  Ports p;
  // Linux's type-1 probe: write enable, read it back unchanged.
  p.outl(0xCF8, 0x8000'0000);
  CHECK(p.inl(0xCF8) == 0x8000'0000u);
  CHECK(p.inl(0xCFC) == 0x0D57'8086u);
  CHECK(p.config_read(0, 0x08) >> 8 == 0x06'00'00u);  // class: host bridge
  // Reserved and type bits of CONFIG_ADDRESS do not stick.
  p.outl(0xCF8, 0xFFFF'FFFF);
  CHECK(p.inl(0xCF8) == 0x80FF'FFFCu);
  // Narrow accesses to 0xCF8..0xCFB do not touch CONFIG_ADDRESS (the probe's outb to 0xCFB).
  p.outl(0xCF8, Ports::address(0, 0, 0, 0x08));
  p.outb(0xCFB, 0x01);
  p.outw(0xCF8, 0);
  CHECK(p.inl(0xCF8) == Ports::address(0, 0, 0, 0x08));
  CHECK(p.inw(0xCF8) == 0xFFFFu);
}

TEST_CASE("pci root: absent devices, functions, buses and disabled addresses read all-ones",
          "[pci]") {
  Ports p;
  CHECK(p.config_read(5, 0) == kAbsentDword);
  CHECK(p.config_read(0, 0, /*fn=*/1) == kAbsentDword);
  CHECK(p.config_read(0, 0, 0, /*bus=*/1) == kAbsentDword);
  p.outl(0xCF8, 0x0000'0000);  // enable bit clear
  CHECK(p.inl(0xCFC) == kAbsentDword);
  p.outl(0xCFC, 0);  // ignored, no crash
  CHECK(p.root->config_read(31, 0) == kAbsentDword);
  CHECK(p.root->config_read(200, 0) == kAbsentDword);
  // Writes to absent functions are ignored.
  p.config_write(7, 0x04, 0xFFFF'FFFF);
  CHECK(p.config_read(7, 0) == kAbsentDword);
}

TEST_CASE("pci root: byte and word accesses at 0xCFC..0xCFF", "[pci]") {
  Ports p;
  auto dev = std::make_shared<TestPciDevice>(std::vector<BarDescription>{});
  auto slot = p.root->add_device(dev);
  REQUIRE(slot);
  CHECK(*slot == 1);
  p.outl(0xCF8, Ports::address(0, 1, 0, 0x00));
  CHECK(p.inw(0xCFC) == 0x1234u);
  CHECK(p.inw(0xCFE) == 0x5678u);
  CHECK(p.inb(0xCFD) == 0x12u);
  CHECK(p.inb(0xCFF) == 0x56u);
  CHECK(p.inl(0xCFE) == 0xFFFF'FFFFu);  // would cross the dword: refused
  CHECK(p.inw(0xCFF) == 0xFFFFu);

  // Interrupt line (0x3C) is a scratch byte; pin (0x3D) is read-only.
  p.outl(0xCF8, Ports::address(0, 1, 0, 0x3C));
  p.outb(0xCFC, 0x0B);
  p.outb(0xCFD, 0x04);
  CHECK(p.inb(0xCFC) == 0x0Bu);
  CHECK(p.inb(0xCFD) == 0x00u);
  // Command via a word write at 0xCFC, status via a word read at 0xCFE.
  p.outl(0xCF8, Ports::address(0, 1, 0, 0x04));
  p.outw(0xCFC, kCommandBusMaster);
  CHECK(p.inw(0xCFC) == kCommandBusMaster);
  CHECK(p.inw(0xCFE) == 0u);
}

TEST_CASE("pci root: slots 1..31 fill up, then ENOSPC", "[pci]") {
  PciRoot root;
  for (int i = 1; i < 32; ++i) {
    auto slot = root.add_device(std::make_shared<TestPciDevice>(std::vector<BarDescription>{}));
    REQUIRE(slot);
    CHECK(*slot == i);
  }
  auto full = root.add_device(std::make_shared<TestPciDevice>(std::vector<BarDescription>{}));
  CHECK(full.error().code() == ENOSPC);
  CHECK(root.add_device(nullptr).error().code() == EINVAL);
}

TEST_CASE("pci bar allocator: size-aligned, bounded by the window", "[pci]") {
  BarAllocator a(0xC000'0000, 0xC001'0000);
  CHECK(a.allocate(0x1000) == 0xC000'0000u);
  CHECK(a.allocate(0x4000) == 0xC000'4000u);  // aligned up past the first page
  CHECK(a.allocate(0x10) == 0xC000'8000u);
  CHECK(a.allocate(0x8000).error().code() == ENOSPC);
  CHECK(a.allocate(0x3000).error().code() == EINVAL);
  CHECK(a.allocate(0).error().code() == EINVAL);
  BarAllocator top(~0ull - 0xFFF, ~0ull);
  CHECK(top.allocate(0x10000).error().code() == ENOSPC);  // no wrap-around
}

TEST_CASE("pci root: attach_bars places BARs in the MMIO hole and maps them", "[pci]") {
  Ports p;
  Bus mmio("mmio");
  auto small = std::make_shared<TestPciDevice>(
      std::vector<BarDescription>{{0, 0x8000, BarType::kMemory64, false},
                                  {2, 0x1000, BarType::kMemory32, false}},
      0x10);
  auto big = std::make_shared<TestPciDevice>(
      std::vector<BarDescription>{{0, 0x10'0000, BarType::kMemory32, true}}, 0x20);
  REQUIRE(p.root->add_device(small));
  REQUIRE(p.root->add_device(big));
  std::vector<std::pair<uint8_t, BarChange>> seen;
  p.root->set_bar_listener([&](uint8_t slot, const BarChange& c) { seen.emplace_back(slot, c); });
  REQUIRE(p.root->attach_bars(mmio));
  CHECK(p.root->attach_bars(mmio).error().code() == EALREADY);

  // Largest first, each aligned to its size.
  CHECK(big->config().bar_address(0) == kPciMmioWindowStart);
  CHECK(small->config().bar_address(0) == kPciMmioWindowStart + 0x10'0000);
  CHECK(small->config().bar_address(2) == kPciMmioWindowStart + 0x10'8000);
  CHECK((p.config_read(1, 0x04) & kCommandMemorySpace) != 0);
  CHECK(seen.size() == 3);

  uint8_t b[4] = {};
  CHECK(mmio.read(kPciMmioWindowStart + 0x123, b));
  CHECK(b[0] == 0x20);
  CHECK(mmio.read(kPciMmioWindowStart + 0x10'0000 + 0x7FFF, std::span<uint8_t>(b, 1)));
  CHECK(b[0] == 0x10);
  CHECK(mmio.read(kPciMmioWindowStart + 0x10'8000, b));
  CHECK(b[0] == 0x12);

  SECTION("a device added later is placed at once") {
    auto late = std::make_shared<TestPciDevice>(
        std::vector<BarDescription>{{0, 0x1000, BarType::kMemory32, false}}, 0x30);
    REQUIRE(p.root->add_device(late));
    CHECK(late->config().bar_address(0) == kPciMmioWindowStart + 0x10'9000);
    CHECK(mmio.read(kPciMmioWindowStart + 0x10'9000, b));
    CHECK(b[0] == 0x30);
  }

  SECTION("the guest moves a BAR and switches decoding off and on") {
    const uint64_t old_base = kPciMmioWindowStart + 0x10'8000;
    p.config_write(1, 0x04, 0);  // memory decoding off: every BAR of slot 1 unmapped
    CHECK_FALSE(mmio.read(old_base, b));
    CHECK_FALSE(mmio.read(kPciMmioWindowStart + 0x10'0000, b));
    p.config_write(1, 0x18, 0xD000'0000);  // BAR2
    p.config_write(1, 0x04, kCommandMemorySpace);
    CHECK_FALSE(mmio.read(old_base, b));
    CHECK(mmio.read(0xD000'0000, b));
    CHECK(b[0] == 0x12);
    CHECK(seen.back().first == 1);
  }

  SECTION("a BAR moved onto another device stays unmapped; the other device keeps its range") {
    p.config_write(1, 0x18, static_cast<uint32_t>(kPciMmioWindowStart));  // onto big's BAR0
    CHECK(mmio.read(kPciMmioWindowStart, b));
    CHECK(b[0] == 0x20);
    CHECK_FALSE(mmio.read(kPciMmioWindowStart + 0x10'8000, b));
    // Moving it back to free space maps it again.
    p.config_write(1, 0x18, 0xD100'0000);
    CHECK(mmio.read(0xD100'0000, b));
    CHECK(b[0] == 0x12);
    // Sizing with decoding left on: the BAR lands at 0xFFFFF000 — mapped, harmless.
    p.config_write(1, 0x18, 0xFFFF'FFFF);
    CHECK(p.config_read(1, 0x18) == 0xFFFF'F000u);
    CHECK(mmio.read(0xFFFF'F000, b));
    CHECK(mmio.read(kPciMmioWindowStart, b));
    CHECK(b[0] == 0x20);
  }
}
