#include <catch2/catch.hpp>

#include "compute/memory/guest_ram.hpp"
#include "tests/fakes/fake_guest_memory.hpp"

using namespace hcnode;
using namespace hcnode::compute;

TEST_CASE("GuestRam below the MMIO hole is one region at 0", "[compute][memory]") {
  auto ram = GuestRam::create(128 << 20);
  REQUIRE(ram.has_value());
  REQUIRE(ram->regions().size() == 1);
  CHECK(ram->regions()[0].gpa == 0);
  CHECK(ram->ram_size() == (128u << 20));
  CHECK(ram->slice((128 << 20) - 4096, 4096).has_value());
  CHECK(ram->slice((128 << 20) - 4096, 4097).error().code() == EFAULT);
  CHECK(ram->slice(128 << 20, 0).has_value());  // empty range at the very end
  CHECK(ram->slice(~0ull, 2).error().code() == EFAULT);  // no wrap-around
}

TEST_CASE("GuestRam above 3 GiB splits around the 32-bit MMIO hole", "[compute][memory]") {
  const uint64_t size = 4ull << 30;
  auto ram = GuestRam::create(size);
  REQUIRE(ram.has_value());
  REQUIRE(ram->regions().size() == 2);
  CHECK(ram->regions()[0].host.size() == kMmioHoleStart);
  CHECK(ram->regions()[1].gpa == kMmioHoleEnd);
  CHECK(ram->regions()[1].host.size() == size - kMmioHoleStart);
  CHECK(ram->slice(kMmioHoleStart - 8, 8).has_value());
  CHECK(ram->slice(kMmioHoleStart - 8, 16).error().code() == EFAULT);  // crosses into the hole
  CHECK(ram->slice(kMmioHoleStart, 1).error().code() == EFAULT);
  CHECK(ram->slice(kMmioHoleEnd, 4096).has_value());
}

TEST_CASE("GuestRam refuses sizes that are not multiples of 4 KiB", "[compute][memory]") {
  CHECK(GuestRam::create(0).error().code() == EINVAL);
  CHECK(GuestRam::create(4097).error().code() == EINVAL);
}

TEST_CASE("GuestMemory object helpers round-trip and stay in bounds", "[compute][memory]") {
  testing::FakeGuestMemory mem(4096, 0x10000);
  REQUIRE(mem.write_obj<uint32_t>(0x10010, 0xdeadbeef).has_value());
  CHECK(mem.read_obj<uint32_t>(0x10010).value() == 0xdeadbeef);
  CHECK(*mem.host(0x10010) == 0xef);  // little-endian
  CHECK(mem.read_obj<uint64_t>(0x10000 + 4092).error().code() == EFAULT);
  CHECK(mem.read_obj<uint8_t>(0xFFFF).error().code() == EFAULT);
  CHECK(mem.write_obj<uint16_t>(0x11000, 1).error().code() == EFAULT);
}
