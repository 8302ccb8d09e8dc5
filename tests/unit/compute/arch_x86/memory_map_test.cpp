#include <catch2/catch.hpp>

#include "compute/arch/x86/memory_map.hpp"
#include "compute/memory/guest_ram.hpp"

using namespace hcnode;
using namespace hcnode::compute::x86;

namespace {
constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kGiB = 1ull << 30;
}  // namespace

TEST_CASE("x86 e820 map for a 128 MiB guest", "[x86][e820]") {
  auto map = build_memory_map(128 * kMiB);
  REQUIRE(map.has_value());
  const std::vector<E820Entry> expected = {
      {0, 0x9fc00, E820Type::kRam},
      {0x9fc00, 0x100000 - 0x9fc00, E820Type::kReserved},
      {0x100000, 128 * kMiB - 0x100000, E820Type::kRam},
  };
  CHECK(*map == expected);
  CHECK(low_ram_end(128 * kMiB) == 128 * kMiB);
}

TEST_CASE("x86 e820 map for a 3 GiB guest stops at the MMIO hole", "[x86][e820]") {
  auto map = build_memory_map(3 * kGiB);
  REQUIRE(map.has_value());
  REQUIRE(map->size() == 3);
  CHECK(map->back() == E820Entry{0x100000, 3 * kGiB - 0x100000, E820Type::kRam});
  CHECK(low_ram_end(3 * kGiB) == compute::kMmioHoleStart);
}

TEST_CASE("x86 e820 map for a 5 GiB guest puts 2 GiB above 4 GiB", "[x86][e820]") {
  auto map = build_memory_map(5 * kGiB);
  REQUIRE(map.has_value());
  REQUIRE(map->size() == 4);
  CHECK((*map)[2] == E820Entry{0x100000, 3 * kGiB - 0x100000, E820Type::kRam});
  CHECK((*map)[3] == E820Entry{4 * kGiB, 2 * kGiB, E820Type::kRam});
  CHECK(low_ram_end(5 * kGiB) == 3 * kGiB);
  // RAM in the map adds up to the guest's size less the reserved 0x9fc00-1 MiB window, and
  // nothing lies in the 3-4 GiB hole.
  uint64_t ram = 0;
  for (const E820Entry& e : *map) {
    CHECK((e.addr + e.size <= 3 * kGiB || e.addr >= 4 * kGiB));
    if (e.type == E820Type::kRam) {
      ram += e.size;
    }
  }
  CHECK(ram == 5 * kGiB - (0x100000 - 0x9fc00));
}

TEST_CASE("x86 e820 map matches GuestRam's regions", "[x86][e820]") {
  for (uint64_t size : {64 * kMiB, 3 * kGiB, 4 * kGiB + 8 * kMiB}) {
    auto ram = compute::GuestRam::create(size);
    REQUIRE(ram.has_value());
    auto map = build_memory_map(size);
    REQUIRE(map.has_value());
    for (const E820Entry& e : *map) {
      if (e.type == E820Type::kRam) {
        CHECK(ram->slice(e.addr, e.size).has_value());
      }
    }
  }
}

TEST_CASE("x86 e820 map refuses guests too small or not page sized", "[x86][e820]") {
  CHECK(build_memory_map(1 * kMiB).error().code() == EINVAL);
  CHECK(build_memory_map(0).error().code() == EINVAL);
  CHECK(build_memory_map(64 * kMiB + 1).error().code() == EINVAL);
  CHECK(build_memory_map(2 * kMiB).has_value());
}
