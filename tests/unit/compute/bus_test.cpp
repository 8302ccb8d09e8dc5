#include "compute/devices/bus.hpp"

#include <vector>

#include <catch2/catch.hpp>

using namespace hcnode::compute;

namespace {

// Records accesses and answers reads with the low byte of the offset.
struct RecordingDevice final : BusDevice {
  std::vector<std::pair<uint64_t, std::vector<uint8_t>>> writes;
  void read(uint64_t offset, std::span<uint8_t> data) override {
    for (auto& b : data) {
      b = static_cast<uint8_t>(offset);
    }
  }
  void write(uint64_t offset, std::span<const uint8_t> data) override {
    writes.emplace_back(offset, std::vector<uint8_t>(data.begin(), data.end()));
  }
};

}  // namespace

TEST_CASE("Bus dispatches by range with offsets relative to the range base", "[compute][bus]") {
  Bus bus("pio");
  auto com1 = std::make_shared<RecordingDevice>();
  REQUIRE(bus.insert(0x3F8, 8, com1).has_value());
  uint8_t byte[1];
  CHECK(bus.read(0x3FD, byte));
  CHECK(byte[0] == 5);
  const uint8_t out[1] = {'x'};
  CHECK(bus.write(0x3F8, out));
  REQUIRE(com1->writes.size() == 1);
  CHECK(com1->writes[0].first == 0);
  CHECK(com1->writes[0].second == std::vector<uint8_t>{'x'});
}

TEST_CASE("Bus: unclaimed addresses read as all-ones and ignore writes", "[compute][bus]") {
  Bus bus("pio");
  REQUIRE(bus.insert(0x3F8, 8, std::make_shared<RecordingDevice>()).has_value());
  uint8_t word[4] = {};
  CHECK_FALSE(bus.read(0x3F7, word));
  CHECK(word[0] == 0xFF);
  CHECK(word[3] == 0xFF);
  CHECK_FALSE(bus.read(0x400, word));
  const uint8_t out[1] = {1};
  CHECK_FALSE(bus.write(0x400, out));
}

TEST_CASE("Bus refuses overlapping and empty ranges, removes by base", "[compute][bus]") {
  Bus bus("mmio");
  auto dev = std::make_shared<RecordingDevice>();
  REQUIRE(bus.insert(0x1000, 0x100, dev).has_value());
  CHECK(bus.insert(0x10FF, 0x10, dev).error().code() == EEXIST);
  CHECK(bus.insert(0x0FF0, 0x11, dev).error().code() == EEXIST);
  CHECK(bus.insert(0x0F00, 0x1000, dev).error().code() == EEXIST);
  CHECK(bus.insert(0x2000, 0, dev).error().code() == EINVAL);
  CHECK(bus.insert(~0ull - 4, 0x10, dev).error().code() == EINVAL);
  CHECK(bus.insert(0x1100, 0x10, dev).has_value());  // adjacent is fine
  CHECK(bus.insert(0x0FF0, 0x10, dev).has_value());
  CHECK(bus.ranges().size() == 3);
  CHECK(bus.remove(0x1000).has_value());
  CHECK(bus.remove(0x1000).error().code() == ENOENT);
  uint8_t b[1];
  CHECK_FALSE(bus.read(0x1050, b));
}
