// parse_blk_request against chains built by hand in a fake guest memory (virtio 1.2 5.2.6).
#include <cstring>

#include <catch2/catch.hpp>

#include "compute/devices/virtio_blk/blk_request.hpp"
#include "compute/devices/virtio_blk/blk_spec.hpp"
#include "tests/fakes/fake_guest_memory.hpp"

using namespace hcnode;
using namespace hcnode::compute::virtio;
using namespace hcnode::compute::virtio::blk;
using hcnode::testing::FakeGuestMemory;

namespace {

constexpr uint64_t kCapacity = 1 << 20;  // 1 MiB disk

struct Fixture {
  FakeGuestMemory mem{1 << 20};
  uint64_t next = 0x1000;
  BlkLimits limits{.capacity_bytes = kCapacity,
                   .read_only = false,
                   .discard = true,
                   .write_zeroes = true,
                   .max_discard_sectors = 1024,
                   .max_write_zeroes_sectors = 1024,
                   .max_segments = 8};

  uint64_t alloc(uint64_t len) {
    const uint64_t at = next;
    next += (len + 15) & ~uint64_t{15};
    return at;
  }
  uint64_t header(uint32_t type, uint64_t sector) {
    const uint64_t at = alloc(16);
    uint8_t h[16] = {};
    std::memcpy(h, &type, 4);
    std::memcpy(h + 8, &sector, 8);
    REQUIRE(mem.write(at, h));
    return at;
  }
  uint64_t segment(uint64_t sector, uint32_t sectors, uint32_t flags) {
    const uint64_t at = alloc(16);
    uint8_t s[16] = {};
    std::memcpy(s, &sector, 8);
    std::memcpy(s + 8, &sectors, 4);
    std::memcpy(s + 12, &flags, 4);
    REQUIRE(mem.write(at, s));
    return at;
  }
  static DescriptorChain chain(std::vector<Buffer> buffers) {
    DescriptorChain c;
    c.head = 3;
    for (const Buffer& b : buffers) {
      if (b.writable) {
        c.writable_bytes += b.len;
      } else {
        ++c.readable_count;
        c.readable_bytes += b.len;
      }
    }
    c.buffers = std::move(buffers);
    return c;
  }
  ParseResult parse(const DescriptorChain& c, BlkRequest& out) {
    return parse_blk_request(mem, c, limits, out);
  }
};

}  // namespace

TEST_CASE("blk request: a read names its data buffers and the status byte", "[virtio][blk]") {
  Fixture f;
  const uint64_t hdr = f.header(kTypeIn, 8);
  const uint64_t data = f.alloc(4096);
  const uint64_t status = f.alloc(1);
  BlkRequest req;
  auto r = f.parse(Fixture::chain({{hdr, 16, false}, {data, 4096, true}, {status, 1, true}}), req);
  REQUIRE(r);
  CHECK(req.op == BlkOp::kRead);
  CHECK(req.offset == 8 * 512);
  CHECK(req.length == 4096);
  REQUIRE(req.iov.size() == 1);
  CHECK(req.iov[0].iov_base == f.mem.host(data));
  CHECK(req.iov[0].iov_len == 4096);
  CHECK(req.status == f.mem.host(status));
  CHECK(req.used_len_ok == 4097);
}

TEST_CASE("blk request: header and data may share a descriptor, data and status too",
          "[virtio][blk]") {
  Fixture f;
  // OUT: header + 1024 data bytes in one readable buffer.
  const uint64_t out = f.alloc(16 + 1024);
  uint8_t h[16] = {};
  const uint32_t type = kTypeOut;
  const uint64_t sector = 2;
  std::memcpy(h, &type, 4);
  std::memcpy(h + 8, &sector, 8);
  REQUIRE(f.mem.write(out, h));
  const uint64_t status = f.alloc(1);
  BlkRequest req;
  REQUIRE(f.parse(Fixture::chain({{out, 16 + 1024, false}, {status, 1, true}}), req));
  CHECK(req.op == BlkOp::kWrite);
  REQUIRE(req.iov.size() == 1);
  CHECK(req.iov[0].iov_base == f.mem.host(out + 16));
  CHECK(req.iov[0].iov_len == 1024);
  CHECK(req.used_len_ok == 1);

  // IN: 512 data bytes and the status in one writable buffer; header split 8 + 8.
  const uint64_t hdr = f.header(kTypeIn, 0);
  const uint64_t in = f.alloc(513);
  REQUIRE(f.parse(Fixture::chain({{hdr, 8, false}, {hdr + 8, 8, false}, {in, 513, true}}), req));
  CHECK(req.op == BlkOp::kRead);
  CHECK(req.length == 512);
  REQUIRE(req.iov.size() == 1);
  CHECK(req.iov[0].iov_len == 512);
  CHECK(req.status == f.mem.host(in + 512));
}

TEST_CASE("blk request: a chain without a writable byte has no status to report",
          "[virtio][blk]") {
  Fixture f;
  const uint64_t hdr = f.header(kTypeOut, 0);
  const uint64_t data = f.alloc(512);
  BlkRequest req;
  auto r = f.parse(Fixture::chain({{hdr, 16, false}, {data, 512, false}}), req);
  REQUIRE_FALSE(r);
  CHECK(r.error().status == nullptr);
}

TEST_CASE("blk request: malformed requests get IOERR or UNSUPP in their status byte",
          "[virtio][blk]") {
  Fixture f;
  const uint64_t status = f.alloc(1);
  const Buffer st{status, 1, true};
  BlkRequest req;
  auto expect = [&](std::vector<Buffer> buffers, uint8_t code) {
    buffers.push_back(st);
    auto r = f.parse(Fixture::chain(buffers), req);
    REQUIRE_FALSE(r);
    CHECK(r.error().status == f.mem.host(status));
    CHECK(r.error().code == code);
    INFO(r.error().reason);
  };
  SECTION("short header") { expect({{f.header(kTypeIn, 0), 8, false}}, kStatusIoErr); }
  SECTION("unknown type") { expect({{f.header(0xff, 0), 16, false}}, kStatusUnsupp); }
  SECTION("length not a multiple of 512") {
    expect({{f.header(kTypeOut, 0), 16, false}, {f.alloc(100), 100, false}}, kStatusIoErr);
  }
  SECTION("read past the end") {
    expect({{f.header(kTypeIn, kCapacity / 512), 16, false}, {f.alloc(512), 512, true}},
           kStatusIoErr);
  }
  SECTION("read straddling the end") {
    expect({{f.header(kTypeIn, kCapacity / 512 - 1), 16, false}, {f.alloc(1024), 1024, true}},
           kStatusIoErr);
  }
  SECTION("sector overflow") {
    expect({{f.header(kTypeIn, 1ull << 63), 16, false}, {f.alloc(512), 512, true}},
           kStatusIoErr);
  }
  SECTION("write to a read-only disk") {
    f.limits.read_only = true;
    expect({{f.header(kTypeOut, 0), 16, false}, {f.alloc(512), 512, false}}, kStatusIoErr);
  }
  SECTION("discard on a read-only disk") {
    f.limits.read_only = true;
    expect({{f.header(kTypeDiscard, 0), 16, false}, {f.segment(0, 8, 0), 16, false}},
           kStatusIoErr);
  }
  SECTION("more data segments than the backend takes") {
    std::vector<Buffer> b{{f.header(kTypeOut, 0), 16, false}};
    for (int i = 0; i < 9; ++i) b.push_back({f.alloc(512), 512, false});
    expect(b, kStatusIoErr);
  }
  SECTION("discard not negotiated") {
    f.limits.discard = false;
    expect({{f.header(kTypeDiscard, 0), 16, false}, {f.segment(0, 8, 0), 16, false}},
           kStatusUnsupp);
  }
  SECTION("two discard segments") {
    expect({{f.header(kTypeDiscard, 0), 16, false},
            {f.segment(0, 8, 0), 16, false},
            {f.segment(8, 8, 0), 16, false}},
           kStatusUnsupp);
  }
  SECTION("unmap flag on a discard") {
    expect({{f.header(kTypeDiscard, 0), 16, false}, {f.segment(0, 8, kRangeFlagUnmap), 16, false}},
           kStatusUnsupp);
  }
  SECTION("unknown write-zeroes flags") {
    expect({{f.header(kTypeWriteZeroes, 0), 16, false}, {f.segment(0, 8, 0x80), 16, false}},
           kStatusUnsupp);
  }
  SECTION("discard range larger than advertised") {
    expect({{f.header(kTypeDiscard, 0), 16, false}, {f.segment(0, 1025, 0), 16, false}},
           kStatusIoErr);
  }
  SECTION("write-zeroes past the end") {
    expect({{f.header(kTypeWriteZeroes, 0), 16, false},
            {f.segment(kCapacity / 512 - 4, 8, 0), 16, false}},
           kStatusIoErr);
  }
}

TEST_CASE("blk request: flush, get-id, discard and write-zeroes parse", "[virtio][blk]") {
  Fixture f;
  const uint64_t status = f.alloc(1);
  const Buffer st{status, 1, true};
  BlkRequest req;
  REQUIRE(f.parse(Fixture::chain({{f.header(kTypeFlush, 77), 16, false}, st}), req));
  CHECK(req.op == BlkOp::kFlush);

  const uint64_t id = f.alloc(20);
  REQUIRE(f.parse(Fixture::chain({{f.header(kTypeGetId, 0), 16, false}, {id, 20, true}, st}), req));
  CHECK(req.op == BlkOp::kGetId);
  CHECK(req.length == 20);
  CHECK(req.used_len_ok == 21);

  REQUIRE(f.parse(Fixture::chain({{f.header(kTypeDiscard, 0), 16, false},
                                  {f.segment(16, 32, 0), 16, false}, st}),
                  req));
  CHECK(req.op == BlkOp::kDiscard);
  CHECK(req.offset == 16 * 512);
  CHECK(req.length == 32 * 512);

  REQUIRE(f.parse(Fixture::chain({{f.header(kTypeWriteZeroes, 0), 16, false},
                                  {f.segment(0, 8, kRangeFlagUnmap), 16, false}, st}),
                  req));
  CHECK(req.op == BlkOp::kWriteZeroes);
  CHECK(req.unmap);
  CHECK(req.length == 4096);
}

TEST_CASE("blk request: a read of the last sector is inside the disk", "[virtio][blk]") {
  Fixture f;
  BlkRequest req;
  REQUIRE(f.parse(Fixture::chain({{f.header(kTypeIn, kCapacity / 512 - 1), 16, false},
                                  {f.alloc(512), 512, true},
                                  {f.alloc(1), 1, true}}),
                  req));
  CHECK(req.offset + req.length == kCapacity);
}
