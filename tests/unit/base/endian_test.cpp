#include "base/endian.hpp"

#include <array>
#include <cstdint>

#include <catch2/catch.hpp>

using namespace hcnode;

// The oracle is the byte order itself, written out byte by byte: little-endian puts the least
// significant byte first, big-endian the most significant one.
constexpr std::array<uint8_t, 8> kBytes{0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF};

TEST_CASE("endian: fixed-width loads read little- and big-endian byte orders", "[base][endian]") {
  CHECK(load_le16(kBytes.data()) == 0x2301);
  CHECK(load_le32(kBytes.data()) == 0x67452301u);
  CHECK(load_le64(kBytes.data()) == 0xEFCDAB8967452301ull);
  CHECK(load_be16(kBytes.data()) == 0x0123);
  CHECK(load_be32(kBytes.data()) == 0x01234567u);
  CHECK(load_be64(kBytes.data()) == 0x0123456789ABCDEFull);
}

TEST_CASE("endian: fixed-width stores write exactly their bytes, in order", "[base][endian]") {
  std::array<uint8_t, 10> b{};
  b.fill(0xEE);
  store_le16(b.data() + 1, 0xBEEF);
  CHECK(b == std::array<uint8_t, 10>{0xEE, 0xEF, 0xBE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE});
  b.fill(0xEE);
  store_le32(b.data() + 1, 0x12345678u);
  CHECK(b == std::array<uint8_t, 10>{0xEE, 0x78, 0x56, 0x34, 0x12, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE});
  b.fill(0xEE);
  store_le64(b.data() + 1, 0x0102030405060708ull);
  CHECK(b == std::array<uint8_t, 10>{0xEE, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0xEE});
  b.fill(0xEE);
  store_be16(b.data() + 1, 0xBEEF);
  CHECK(b == std::array<uint8_t, 10>{0xEE, 0xBE, 0xEF, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE});
  b.fill(0xEE);
  store_be32(b.data() + 1, 0x12345678u);
  CHECK(b == std::array<uint8_t, 10>{0xEE, 0x12, 0x34, 0x56, 0x78, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE});
  b.fill(0xEE);
  store_be64(b.data() + 1, 0x0102030405060708ull);
  CHECK(b == std::array<uint8_t, 10>{0xEE, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0xEE});
}

TEST_CASE("endian: loads and stores at every misalignment round-trip (UBSan checks alignment)",
          "[base][endian]") {
  // Odd offsets into a byte buffer are the case a cast to uint64_t* gets wrong (UB, and a trap
  // on strict-alignment hosts); the sanitizer build would report it.
  alignas(8) std::array<uint8_t, 24> b{};
  for (size_t off = 0; off < 8; ++off) {
    const uint64_t v = 0x8877665544332211ull + off;
    store_le64(b.data() + off, v);
    CHECK(load_le64(b.data() + off) == v);
    CHECK(b[off] == static_cast<uint8_t>(v));        // least significant byte first
    store_be64(b.data() + off, v);
    CHECK(load_be64(b.data() + off) == v);
    CHECK(b[off] == static_cast<uint8_t>(v >> 56));  // most significant byte first
    store_le32(b.data() + off, static_cast<uint32_t>(v));
    CHECK(load_le32(b.data() + off) == static_cast<uint32_t>(v));
    store_be16(b.data() + off, static_cast<uint16_t>(v));
    CHECK(load_be16(b.data() + off) == static_cast<uint16_t>(v));
  }
}

TEST_CASE("endian: variable-width load_le zero-extends and reads at most 8 bytes", "[base][endian]") {
  const std::span<const uint8_t> all(kBytes);
  CHECK(load_le(all.first(0)) == 0);
  CHECK(load_le(all.first(1)) == 0x01);
  CHECK(load_le(all.first(2)) == 0x2301);
  CHECK(load_le(all.first(3)) == 0x452301);
  CHECK(load_le(all.first(4)) == 0x67452301u);
  CHECK(load_le(all.subspan(4, 2)) == 0xAB89);
  CHECK(load_le(all) == 0xEFCDAB8967452301ull);
  const std::array<uint8_t, 12> longer{0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFF, 0xFF, 0xFF, 0xFF};
  CHECK(load_le(std::span<const uint8_t>(longer)) == 0xEFCDAB8967452301ull);  // bytes 8.. ignored
  CHECK(load_le(std::span<const uint8_t>{}) == 0);                            // empty, null data
}

TEST_CASE("endian: variable-width store_le writes the low-order bytes only", "[base][endian]") {
  std::array<uint8_t, 12> b{};
  b.fill(0xEE);
  store_le(std::span(b).first(1), 0x1122334455667788ull);
  CHECK(b[0] == 0x88);
  CHECK(b[1] == 0xEE);
  b.fill(0xEE);
  store_le(std::span(b).subspan(2, 2), 0x1122334455667788ull);
  CHECK(b == std::array<uint8_t, 12>{0xEE, 0xEE, 0x88, 0x77, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE});
  b.fill(0xEE);
  store_le(std::span(b), 0x1122334455667788ull);  // 12 bytes: the last four are left alone
  CHECK(b == std::array<uint8_t, 12>{0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0xEE, 0xEE, 0xEE, 0xEE});
  store_le(std::span<uint8_t>{}, 1);  // empty: nothing written, nothing read
}
