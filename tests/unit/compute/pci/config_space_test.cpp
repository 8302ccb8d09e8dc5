#include <set>
#include <vector>

#include <catch2/catch.hpp>

#include "compute/devices/pci/config_space.hpp"

using namespace hcnode;
using namespace hcnode::compute::pci;

namespace {

PciIds test_ids() { return PciIds{0x1AF4, 0x1044, 1, 0xFF'00'00, 0x1AF4, 0x44}; }

void write32(PciConfigSpace& cs, uint16_t off, uint32_t v) {
  const uint8_t b[4] = {static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8),
                        static_cast<uint8_t>(v >> 16), static_cast<uint8_t>(v >> 24)};
  cs.write(off, b);
}

std::vector<BarChange> write16(PciConfigSpace& cs, uint16_t off, uint16_t v) {
  const uint8_t b[2] = {static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8)};
  return cs.write(off, b);
}

}  // namespace

TEST_CASE("pci config space: identity registers are read-only", "[pci]") {
  PciConfigSpace cs(test_ids());
  CHECK(cs.read(kRegVendorId) == 0x1044'1AF4u);
  CHECK(cs.read(kRegRevisionId) == 0xFF00'0001u);  // class FF/00/00, revision 1
  CHECK(cs.read(kRegSubsystemVendorId) == 0x0044'1AF4u);
  CHECK(cs.read_byte(kRegHeaderType) == 0);
  write32(cs, kRegVendorId, 0xFFFF'FFFF);
  write32(cs, kRegRevisionId, 0);
  write32(cs, kRegSubsystemVendorId, 0);
  write32(cs, kRegCacheLineSize, 0xFFFF'FFFF);  // cache line RW, latency/header/BIST RO
  CHECK(cs.read(kRegVendorId) == 0x1044'1AF4u);
  CHECK(cs.read(kRegRevisionId) == 0xFF00'0001u);
  CHECK(cs.read(kRegSubsystemVendorId) == 0x0044'1AF4u);
  CHECK(cs.read(kRegCacheLineSize) == 0x0000'00FFu);
  // Reads are dword-granular whatever the offset's low bits; past the end is zero.
  CHECK(cs.read(kRegVendorId + 3) == 0x1044'1AF4u);
  CHECK(cs.read(0x100) == 0);
}

TEST_CASE("pci config space: 32-bit BAR sizing returns the size mask with the flag bits", "[pci]") {
  PciConfigSpace cs(test_ids());
  REQUIRE(cs.add_bar({1, 0x1000, BarType::kMemory32, /*prefetchable=*/true}));
  const uint16_t reg = kRegBar0 + 4;
  CHECK(cs.read(reg) == kBarPrefetchable);
  write32(cs, reg, 0xFFFF'FFFF);
  CHECK(cs.read(reg) == (0xFFFF'F000u | kBarPrefetchable));
  write32(cs, reg, 0xC000'1234);  // low address bits are hard-wired to zero
  CHECK(cs.read(reg) == (0xC000'1000u | kBarPrefetchable));
  CHECK(cs.bar_address(1) == 0xC000'1000u);
  // Unimplemented BARs and the expansion ROM read as zero even after all-ones.
  write32(cs, kRegBar0, 0xFFFF'FFFF);
  write32(cs, 0x30, 0xFFFF'FFFF);
  CHECK(cs.read(kRegBar0) == 0);
  CHECK(cs.read(0x30) == 0);
}

TEST_CASE("pci config space: a 64-bit BAR is a pair of dwords", "[pci]") {
  PciConfigSpace cs(test_ids());
  REQUIRE(cs.add_bar({0, 0x8000, BarType::kMemory64, false}));
  CHECK(cs.read(kRegBar0) == kBarMemType64);
  write32(cs, kRegBar0, 0xFFFF'FFFF);
  write32(cs, kRegBar0 + 4, 0xFFFF'FFFF);
  CHECK(cs.read(kRegBar0) == (0xFFFF'8000u | kBarMemType64));
  CHECK(cs.read(kRegBar0 + 4) == 0xFFFF'FFFFu);
  write32(cs, kRegBar0, 0x0000'8000);
  write32(cs, kRegBar0 + 4, 0x0000'0001);
  CHECK(cs.bar_address(0) == 0x1'0000'8000ull);
  REQUIRE(cs.bars().size() == 1);
  CHECK(cs.bars()[0].size == 0x8000);

  SECTION("slots are claimed once, sizes and indexes are checked") {
    CHECK(cs.add_bar({1, 0x1000, BarType::kMemory32, false}).error().code() == EEXIST);
    CHECK(cs.add_bar({5, 0x1000, BarType::kMemory64, false}).error().code() == EINVAL);
    CHECK(cs.add_bar({2, 0x1800, BarType::kMemory32, false}).error().code() == EINVAL);
    CHECK(cs.add_bar({2, 8, BarType::kMemory32, false}).error().code() == EINVAL);
    CHECK(cs.add_bar({2, 1ull << 32, BarType::kMemory32, false}).error().code() == EINVAL);
    CHECK(cs.add_bar({6, 0x1000, BarType::kMemory32, false}).error().code() == EINVAL);
    CHECK(cs.add_bar({2, 1ull << 32, BarType::kMemory64, false}));
    // A 4 GiB BAR: the whole low dword's address bits are zero, the high dword sizes it.
    write32(cs, kRegBar0 + 8, 0xFFFF'FFFF);
    write32(cs, kRegBar0 + 12, 0xFFFF'FFFF);
    CHECK(cs.read(kRegBar0 + 8) == kBarMemType64);
    CHECK(cs.read(kRegBar0 + 12) == 0xFFFF'FFFFu);
  }
}

TEST_CASE("pci config space: command bits, W1C status and interrupt line", "[pci]") {
  PciConfigSpace cs(test_ids());
  write16(cs, kRegCommand, 0xFFFF);
  CHECK(cs.command() == (kCommandMemorySpace | kCommandBusMaster | kCommandParityError |
                         kCommandSerr | kCommandInterruptDisable));
  CHECK(cs.memory_decoding());

  // Status: error bits are write-1-to-clear; writing 0 leaves them, other bits are read-only.
  const uint8_t errors[2] = {0x00, 0x80 | 0x40};  // detected parity, signaled system error
  cs.set_bytes(kRegStatus, errors);
  write16(cs, kRegStatus, 0x0000);
  CHECK(cs.read_word(kRegStatus) == 0xC000);
  write16(cs, kRegStatus, 0x8000 | 0x0010);  // also try to set CAP_LIST: read-only
  CHECK(cs.read_word(kRegStatus) == 0x4000);

  const uint8_t line[2] = {0x0B, 0x01};
  cs.write(kRegInterruptLine, line);
  CHECK(cs.read_byte(kRegInterruptLine) == 0x0B);
  CHECK(cs.read_byte(kRegInterruptPin) == 0);  // no INTx
  // Writes past the end are dropped, not out of bounds.
  const uint8_t four[4] = {1, 2, 3, 4};
  cs.write(0xFE, four);
  cs.set_bytes(0xFE, four);
  CHECK(cs.read_word(0xFE) == 0x0201);
}

TEST_CASE("pci config space: the capability list is linked, aligned and terminated", "[pci]") {
  PciConfigSpace cs(test_ids());
  CHECK((cs.read_word(kRegStatus) & kStatusCapabilitiesList) == 0);
  const std::vector<uint8_t> msix(12, 0xAA), vendor16(16, 0xBB), odd5(5, 0xCC);
  std::vector<uint8_t> m = msix, v = vendor16, o = odd5;
  m[0] = kCapIdMsix;
  v[0] = kCapIdVendorSpecific;
  o[0] = 0x05;  // MSI id, just a third kind
  auto a = cs.add_capability(m);
  auto b = cs.add_capability(v);
  auto c = cs.add_capability(o);
  REQUIRE(a);
  REQUIRE(b);
  REQUIRE(c);
  CHECK(*a == 0x40);
  CHECK(*b == 0x4C);
  CHECK(*c == 0x5C);
  CHECK((cs.read_word(kRegStatus) & kStatusCapabilitiesList) != 0);

  // Walk it the way an OS does.
  std::vector<uint8_t> ids;
  std::set<uint8_t> seen;
  uint8_t ptr = cs.read_byte(kRegCapabilitiesPointer);
  while (ptr != 0) {
    REQUIRE(ptr >= kCapabilitiesStart);
    REQUIRE(ptr % 4 == 0);
    REQUIRE(seen.insert(ptr).second);  // no cycle
    ids.push_back(cs.read_byte(ptr));
    ptr = cs.read_byte(ptr + 1);
  }
  CHECK(ids == std::vector<uint8_t>{kCapIdMsix, kCapIdVendorSpecific, 0x05});
  CHECK(cs.read_byte(0x4D) == 0x5C);  // the middle one's next pointer, then its body
  CHECK(cs.read_byte(0x4E) == 0xBB);

  SECTION("capability bytes are read-only unless the owner says otherwise") {
    write32(cs, 0x40, 0xFFFF'FFFF);
    CHECK(cs.read(0x40) == 0xAAAA'4C11u);
    std::vector<uint8_t> body(8, 0x00), mask(8, 0x00);
    body[0] = 0x09;
    mask[1] = 0xFF;  // tries to make `next` writable: ignored
    mask[4] = 0x0F;
    auto d = cs.add_capability(body, mask);
    REQUIRE(d);
    write32(cs, *d, 0xFFFF'FFFF);
    write32(cs, *d + 4, 0xFFFF'FFFF);
    CHECK(cs.read(*d) == 0x0000'0009u);
    CHECK(cs.read(*d + 4) == 0x0000'000Fu);
  }

  SECTION("the space runs out with ENOSPC, malformed capabilities are refused") {
    CHECK(cs.add_capability(std::vector<uint8_t>{0x09}).error().code() == EINVAL);
    CHECK(cs.add_capability(v, std::vector<uint8_t>(3, 0)).error().code() == EINVAL);
    Result<uint8_t> r = 0;
    int added = 0;
    while ((r = cs.add_capability(v))) {
      REQUIRE(*r + 16 <= 0x100);
      ++added;
    }
    CHECK(r.error().code() == ENOSPC);
    CHECK(added == (0x100 - 0x64) / 16);
  }
}

TEST_CASE("pci config space: BAR placement follows memory decoding and reprogramming", "[pci]") {
  PciConfigSpace cs(test_ids());
  REQUIRE(cs.add_bar({0, 0x1000, BarType::kMemory32, false}));
  REQUIRE(cs.add_bar({2, 0x4000, BarType::kMemory64, false}));

  // Programming with decoding off changes nothing visible.
  write32(cs, kRegBar0, 0xC000'0000);
  CHECK_FALSE(cs.bar_mapping(0));
  // Enabling decoding maps the programmed BAR; BAR2 (address 0) stays unmapped.
  auto on = write16(cs, kRegCommand, kCommandMemorySpace);
  REQUIRE(on.size() == 1);
  CHECK(on[0] == BarChange{0, 0x1000, 0xC000'0000});
  CHECK(cs.bar_mapping(0) == 0xC000'0000u);

  // Reprogramming moves it; a write that does not change placement reports nothing.
  const uint32_t moved = 0xD000'0000;
  const uint8_t bytes[4] = {0, 0, 0, 0xD0};
  auto move = cs.write(kRegBar0, bytes);
  REQUIRE(move.size() == 1);
  CHECK(move[0].base == moved);
  CHECK(cs.write(kRegBar0, bytes).empty());
  CHECK(write16(cs, kRegCommand, kCommandMemorySpace | kCommandBusMaster).empty());

  // A 64-bit BAR is mapped at its full address once both halves are written.
  const uint8_t lo[4] = {0, 0, 0, 0xE0}, hi[4] = {1, 0, 0, 0};
  auto lo_change = cs.write(kRegBar0 + 8, lo);
  REQUIRE(lo_change.size() == 1);
  CHECK(lo_change[0].base == 0xE000'0000u);
  auto hi_change = cs.write(kRegBar0 + 12, hi);
  REQUIRE(hi_change.size() == 1);
  CHECK(hi_change[0] == BarChange{2, 0x4000, 0x1'E000'0000ull});

  // Turning decoding off unmaps everything.
  auto off = write16(cs, kRegCommand, 0);
  CHECK(off.size() == 2);
  for (const auto& c : off) {
    CHECK_FALSE(c.base);
  }
}
