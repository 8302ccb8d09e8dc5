#include <memory>
#include <vector>

#include <catch2/catch.hpp>

#include "compute/devices/pci/msix.hpp"
#include "compute/devices/pci/registers.hpp"
#include "tests/fakes/fake_msi.hpp"

using namespace hcnode;
using namespace hcnode::compute;
using namespace hcnode::compute::pci;

namespace {

struct MsixFixture {
  testing::FakeMsiController controller;
  std::unique_ptr<MsixTable> table;

  explicit MsixFixture(uint16_t n = 4) {
    std::vector<std::unique_ptr<MsiVector>> vectors;
    for (uint16_t i = 0; i < n; ++i) {
      vectors.push_back(std::move(*controller.allocate_msi()));
    }
    table = std::make_unique<MsixTable>(std::move(vectors));
  }

  uint64_t triggers(size_t i) { return controller.vector(i)->triggers.load(); }
  uint64_t configures(size_t i) { return controller.vector(i)->configures.load(); }

  void write32(uint64_t offset, uint32_t v) {
    const uint8_t b[4] = {static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8),
                          static_cast<uint8_t>(v >> 16), static_cast<uint8_t>(v >> 24)};
    table->write_table(offset, b);
  }
  uint32_t read32(uint64_t offset) {
    uint8_t b[4] = {};
    table->read_table(offset, b);
    return static_cast<uint32_t>(b[0]) | b[1] << 8 | b[2] << 16 | static_cast<uint32_t>(b[3]) << 24;
  }
  uint64_t read_pba64(uint64_t offset) {
    uint8_t b[8] = {};
    table->read_pba(offset, b);
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) {
      v |= static_cast<uint64_t>(b[i]) << (8 * i);
    }
    return v;
  }
  // Programs entry i the way Linux does: message first, then unmask.
  void program(uint16_t i, uint64_t address, uint32_t data, bool unmask = true) {
    write32(16ull * i + 0, static_cast<uint32_t>(address));
    write32(16ull * i + 4, static_cast<uint32_t>(address >> 32));
    write32(16ull * i + 8, data);
    if (unmask) {
      write32(16ull * i + 12, 0);
    }
  }
};

}  // namespace

TEST_CASE("pci msix: capability bytes encode table size, BIRs and offsets", "[pci][msix]") {
  const auto cap = msix_capability(MsixLayout{3, 0, 0x4000, 2, 0x6000});
  CHECK(cap[0] == kCapIdMsix);
  CHECK((cap[2] | cap[3] << 8) == 2);  // N - 1
  CHECK((cap[4] | cap[5] << 8 | cap[6] << 16 | cap[7] << 24) == 0x4000);
  CHECK((cap[8] | cap[9] << 8 | cap[10] << 16 | cap[11] << 24) == (0x6000 | 2));
  const auto mask = msix_capability_writable();
  CHECK(mask[2] == 0);
  CHECK(mask[3] == 0xC0);  // enable + function mask only
  CHECK(msix_table_bytes(3) == 48);
  CHECK(msix_pba_bytes(3) == 8);
  CHECK(msix_pba_bytes(65) == 16);
}

TEST_CASE("pci msix: entries start masked and read back what the guest wrote", "[pci][msix]") {
  MsixFixture f;
  for (uint16_t i = 0; i < 4; ++i) {
    CHECK(f.read32(16ull * i + 12) == kMsixVectorMasked);
    CHECK(f.table->masked(i));
  }
  f.program(1, 0x0000'0001'FEE0'0000ull, 0x4041, /*unmask=*/false);
  CHECK(f.read32(16) == 0xFEE0'0000u);
  CHECK(f.read32(20) == 1u);
  CHECK(f.read32(24) == 0x4041u);
  // Aligned QWORD accesses work too.
  const uint8_t q[8] = {0x00, 0x10, 0xE0, 0xFE, 0, 0, 0, 0};
  f.table->write_table(32, q);
  uint8_t back[8] = {};
  f.table->read_table(32, back);
  CHECK(std::vector<uint8_t>(back, back + 8) == std::vector<uint8_t>(q, q + 8));
  // Reserved vector-control bits read as zero.
  f.write32(16 + 12, 0xFFFF'FFFF);
  CHECK(f.read32(16 + 12) == 1u);
}

TEST_CASE("pci msix: the message is configured on unmask, not while masked", "[pci][msix]") {
  MsixFixture f;
  f.program(2, 0xFEE0'0000, 0x31, /*unmask=*/false);
  CHECK(f.configures(2) == 0);
  f.write32(2 * 16 + 12, 0);  // unmask
  CHECK(f.configures(2) == 1);
  CHECK(f.controller.vector(2)->last_message() == MsiMessage{0xFEE0'0000, 0x31});
  // Unmasking again with the same message does not reprogram the route.
  f.write32(2 * 16 + 12, 0);
  CHECK(f.configures(2) == 1);
  // Rewriting the data of an unmasked entry reconfigures it.
  f.write32(2 * 16 + 8, 0x32);
  CHECK(f.configures(2) == 2);
  CHECK(f.controller.vector(2)->last_message()->data == 0x32u);
}

TEST_CASE("pci msix: masked vectors go pending and fire on unmask", "[pci][msix]") {
  MsixFixture f;
  f.table->set_control(kMsixControlEnable);
  f.program(1, 0xFEE0'0000, 0x41);
  f.table->notify(1);
  CHECK(f.triggers(1) == 1);

  f.write32(16 + 12, kMsixVectorMasked);
  f.table->notify(1);
  f.table->notify(1);  // still one pending bit
  CHECK(f.triggers(1) == 1);
  CHECK(f.table->pending(1));
  CHECK(f.read_pba64(0) == 0b10u);
  uint8_t hi[4] = {0xAA, 0xAA, 0xAA, 0xAA};
  f.table->read_pba(4, hi);  // upper dword of the first PBA qword
  CHECK(hi[0] == 0);

  f.write32(16 + 12, 0);  // unmask: the pending message is sent once
  CHECK(f.triggers(1) == 2);
  CHECK_FALSE(f.table->pending(1));
  CHECK(f.read_pba64(0) == 0u);
  CHECK(f.triggers(0) == 0);
}

TEST_CASE("pci msix: the function mask holds every vector pending", "[pci][msix]") {
  MsixFixture f;
  f.program(0, 0xFEE0'0000, 0x30);
  f.program(3, 0xFEE0'0000, 0x33);
  f.table->set_control(kMsixControlEnable | kMsixControlFunctionMask);
  CHECK(f.table->function_masked());
  f.table->notify(0);
  f.table->notify(3);
  CHECK(f.triggers(0) == 0);
  CHECK(f.triggers(3) == 0);
  CHECK(f.read_pba64(0) == 0b1001u);
  f.table->set_control(kMsixControlEnable);
  CHECK(f.triggers(0) == 1);
  CHECK(f.triggers(3) == 1);
  CHECK(f.read_pba64(0) == 0u);
}

TEST_CASE("pci msix: with MSI-X disabled notifications are dropped", "[pci][msix]") {
  MsixFixture f;
  f.program(0, 0xFEE0'0000, 0x30);
  f.table->notify(0);
  CHECK(f.triggers(0) == 0);
  CHECK_FALSE(f.table->pending(0));
  CHECK(f.table->dropped() == 1);
  f.table->set_control(kMsixControlEnable);
  f.table->notify(4);       // beyond the table
  f.table->notify(0xFFFF);  // virtio NO_VECTOR
  CHECK(f.table->dropped() == 1);
  f.table->notify(0);
  CHECK(f.triggers(0) == 1);
}

TEST_CASE("pci msix: accesses of the wrong size or alignment are ignored", "[pci][msix]") {
  MsixFixture f(2);
  const uint8_t two[2] = {0x00, 0x00};
  f.table->write_table(12, two);  // 16-bit write to vector control: ignored
  CHECK(f.table->masked(0));
  const uint8_t four[4] = {0, 0, 0, 0};
  f.table->write_table(14, four);  // misaligned dword
  CHECK(f.table->masked(0));
  const uint8_t eight[8] = {};
  f.table->write_table(12, eight);  // qword not qword-aligned
  CHECK(f.table->masked(0));
  f.table->write_table(32, four);  // past the table (2 entries = 32 bytes)
  f.table->write_table(~0ull - 3, four);
  uint8_t one[1] = {0xEE};
  f.table->read_table(12, one);
  CHECK(one[0] == 0);
  uint8_t r4[4] = {0xEE, 0xEE, 0xEE, 0xEE};
  f.table->read_table(32, r4);
  CHECK(r4[0] == 0);
  uint8_t big[16] = {};
  f.table->read_table(0, big);
  f.table->read_pba(8, r4);  // past the one-qword PBA
  CHECK(r4[0] == 0);
  f.table->read_pba(2, r4);
  CHECK(r4[0] == 0);
  CHECK(f.configures(0) == 0);
}

TEST_CASE("pci msix: a refused route is retried and nothing is triggered without one",
          "[pci][msix]") {
  MsixFixture f(1);
  f.table->set_control(kMsixControlEnable);
  {
    std::lock_guard lock(f.controller.vector(0)->mu);
    f.controller.vector(0)->fail_configure = true;
  }
  f.program(0, 0xFEE0'0000, 0x30);
  f.table->notify(0);
  CHECK(f.triggers(0) == 0);
  CHECK(f.table->dropped() == 1);
  {
    std::lock_guard lock(f.controller.vector(0)->mu);
    f.controller.vector(0)->fail_configure = false;
  }
  f.write32(8, 0x31);  // any rewrite retries the route
  f.table->notify(0);
  CHECK(f.triggers(0) == 1);
}
