// Unit tests of compressed qcow2 clusters (blockdev/qcow2/qcow2_compress.hpp) over in-memory
// files. The images are built here by hand: the compressed clusters are zlib's raw-deflate and
// libzstd's own output, placed at byte granularity and described by L2 entries encoded from the
// spec's "Compressed Clusters Descriptor" text, so the oracle is the plain bytes that were
// compressed. Hostile descriptors and payloads must fail their request with EIO.
#include <catch2/catch.hpp>

#include <zlib.h>
#include <zstd.h>

#include <spdlog/spdlog.h>

#include "blockdev/qcow2/qcow2_backend.hpp"
#include "blockdev/qcow2/qcow2_check.hpp"
#include "blockdev/qcow2/qcow2_compress.hpp"
#include "blockdev/qcow2/qcow2_format.hpp"
#include "blockdev/sync_disk.hpp"
#include "tests/fakes/backend_driver.hpp"
#include "tests/fakes/memory_file.hpp"
#include "tests/fakes/qcow2_check_bytes.hpp"

using namespace hcnode;
using namespace hcnode::blockdev;
using namespace hcnode::blockdev::qcow2;
using hcnode::testing::MemoryFile;
using hcnode::testing::check_bytes;

namespace {

std::vector<uint8_t> deflate_raw(const std::vector<uint8_t>& in) {
  z_stream zs{};
  // As QEMU writes them: raw deflate (negative windowBits), 4 KiB window.
  REQUIRE(deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY) == Z_OK);
  std::vector<uint8_t> out(deflateBound(&zs, in.size()));
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::vector<uint8_t> zstd_frame(const std::vector<uint8_t>& in) {
  std::vector<uint8_t> out(ZSTD_compressBound(in.size()));
  const size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3);
  REQUIRE_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

std::vector<uint8_t> compress(uint8_t type, const std::vector<uint8_t>& in) {
  return type == kCompressionZstd ? zstd_frame(in) : deflate_raw(in);
}

// Compressible (to roughly a tenth), different in every cluster and every sector.
std::vector<uint8_t> plain_cluster(uint64_t size, uint64_t index) {
  std::vector<uint8_t> v(size);
  uint32_t lcg = static_cast<uint32_t>(index) * 2654435761u + 1;
  for (uint64_t i = 0; i < size; ++i) {
    lcg = lcg * 1103515245u + 12345u;
    const uint8_t noise = (i % 4 == 0) ? static_cast<uint8_t>(lcg >> 29) : 0;
    v[i] = static_cast<uint8_t>((i / 512) * 7 + index * 13 + noise);
  }
  return v;
}

// The L2 entry of compressed data at byte `offset`, `length` bytes long (spec: x = 62 -
// (cluster_bits - 8); bits 0..x-1 offset, bits x..61 the sectors after the first one).
uint64_t descriptor(uint64_t offset, uint64_t length, uint32_t cluster_bits) {
  const uint32_t x = 62 - (cluster_bits - 8);
  const uint64_t extra = (offset + length - 1) / 512 - offset / 512;
  return kL2Compressed | (extra << x) | offset;
}

// An image whose first `clusters` guest clusters are compressed (packed back to back at byte
// granularity after one L2 table), the rest unallocated. The layout of format_new_image plus:
// cluster 4 the L2 table, from cluster 5 the compressed data.
struct Built {
  std::vector<uint8_t> bytes;
  std::vector<uint8_t> plain;  // the whole virtual disk as it must read
  std::vector<uint64_t> entries;
};

Built build(uint8_t type, uint32_t cluster_bits, uint64_t virtual_size, uint64_t clusters,
            std::string backing = "", std::string backing_format = "") {
  const uint64_t c = uint64_t{1} << cluster_bits;
  REQUIRE(clusters <= c / 8);  // one L2 table
  auto img = format_new_image({virtual_size, cluster_bits, backing, backing_format});
  REQUIRE(img.has_value());
  Built b;
  b.bytes = std::move(*img);
  REQUIRE(b.bytes.size() == 4 * c);
  if (type == kCompressionZstd) {
    // Header v3 with the compression type field: header_length 112, byte 104 = 1, incompatible
    // bit 3. Extensions (and the backing name) move up by 8 bytes.
    std::vector<uint8_t> head(b.bytes.begin(), b.bytes.begin() + static_cast<ptrdiff_t>(c));
    std::copy(head.begin() + 104, head.end() - 8, b.bytes.begin() + 112);
    std::fill(b.bytes.begin() + 104, b.bytes.begin() + 112, 0);
    b.bytes[104] = kCompressionZstd;
    store_be32(b.bytes.data() + 100, 112);
    store_be64(b.bytes.data() + 72, load_be64(b.bytes.data() + 72) | kIncompatCompression);
    if (const uint64_t bo = load_be64(b.bytes.data() + 8); bo != 0) store_be64(b.bytes.data() + 8, bo + 8);
  }
  b.plain.assign(virtual_size, 0);
  const uint64_t l2 = 4 * c;
  b.bytes.resize(5 * c, 0);
  store_be64(b.bytes.data() + 3 * c, l2 | kEntryCopied);  // L1[0]
  std::vector<uint16_t> refs(1, 0);
  for (uint64_t i = 0; i < clusters; ++i) {
    const auto plain = plain_cluster(c, i);
    std::copy(plain.begin(), plain.end(), b.plain.begin() + static_cast<ptrdiff_t>(i * c));
    const auto packed = compress(type, plain);
    const uint64_t at = b.bytes.size();
    b.bytes.insert(b.bytes.end(), packed.begin(), packed.end());
    // The descriptor's size field holds at most 2^(cluster_bits - 8) sectors in all.
    REQUIRE((at + packed.size() - 1) / 512 - at / 512 < (uint64_t{1} << (cluster_bits - 8)));
    const uint64_t e = descriptor(at, packed.size(), cluster_bits);
    b.entries.push_back(e);
    store_be64(b.bytes.data() + l2 + 8 * i, e);
  }
  b.bytes.resize((b.bytes.size() + c - 1) / c * c, 0);
  // Refcounts: the metadata clusters once, each host cluster once per compressed range in it.
  std::vector<uint16_t> counts(b.bytes.size() / c, 0);
  for (uint64_t k = 0; k < 5; ++k) counts[k] = 1;
  for (uint64_t e : b.entries) {
    const auto ce = compressed_extent(e, cluster_bits);
    for (uint64_t k = ce.offset / c; k <= (ce.offset + ce.length - 1) / c; ++k) ++counts[k];
  }
  REQUIRE(counts.size() <= c / 2);
  for (uint64_t k = 0; k < counts.size(); ++k) store_be16(b.bytes.data() + 2 * c + 2 * k, counts[k]);
  return b;
}

std::shared_ptr<Backend> open_image(std::shared_ptr<MemoryFile> file, bool read_only,
                                    std::shared_ptr<Backend> backing = nullptr) {
  Qcow2Options o;
  o.read_only = read_only;
  auto b = Qcow2Backend::open(std::move(file), std::move(backing), o);
  INFO((b ? "" : b.error().message()));
  REQUIRE(b.has_value());
  return *b;
}

std::vector<uint8_t> read_all(const std::shared_ptr<Backend>& b) {
  auto disk = SyncDisk::open(b);
  REQUIRE(disk.has_value());
  std::vector<uint8_t> out(b->info().size);
  auto r = disk->read(0, out);
  INFO((r ? "" : r.error().message()));
  REQUIRE(r.has_value());
  return out;
}

// The result of reading one guest cluster through a fresh read-only open of `bytes`.
int read_cluster(const std::vector<uint8_t>& bytes, uint64_t index, uint64_t c) {
  auto backend = open_image(std::make_shared<MemoryFile>(bytes, true), true);
  auto q = backend->open_queue(4);
  REQUIRE(q.has_value());
  std::vector<uint8_t> buf(c);
  iovec v{buf.data(), c};
  return testing::run(**q, IoRequest{IoKind::kRead, index * c, c, {&v, 1}, 0, false});
}

const char* type_name(uint8_t t) { return t == kCompressionZstd ? "zstd" : "deflate"; }

}  // namespace

TEST_CASE("qcow2 compressed: the descriptor follows the spec's bit layout", "[qcow2][compressed]") {
  // 64 KiB clusters: x = 54; offset bits 0..53, sector count bits 54..61.
  auto e = compressed_extent(kL2Compressed | (uint64_t{3} << 54) | 0x12345, 16);
  CHECK(e.valid);
  CHECK(e.offset == 0x12345);
  CHECK(e.length == 4 * 512 - (0x12345 % 512));
  // The largest sector count the field holds: 256 sectors = two clusters, never more.
  e = compressed_extent(kL2Compressed | (uint64_t{0xff} << 54), 16);
  CHECK(e.length == 256 * 512);
  e = compressed_extent(~uint64_t{0}, 16);
  CHECK(e.length <= 2 * 65536);
  // 512-byte clusters: x = 61, one size bit; offset bits above 55 must be 0.
  e = compressed_extent(kL2Compressed | (uint64_t{1} << 61) | 4096, 9);
  CHECK(e.valid);
  CHECK(e.offset == 4096);
  CHECK(e.length == 1024);
  CHECK_FALSE(compressed_extent(kL2Compressed | (uint64_t{1} << 58) | 4096, 9).valid);
  // 2 MiB clusters: x = 49.
  e = compressed_extent(kL2Compressed | (uint64_t{5} << 49) | 1000, 21);
  CHECK(e.offset == 1000);
  CHECK(e.length == 6 * 512 - 1000 % 512);
}

TEST_CASE("qcow2 compressed: the header's compression type", "[qcow2][compressed]") {
  auto zstd = build(kCompressionZstd, 16, 1 << 20, 1).bytes;
  auto h = parse_header(zstd);
  REQUIRE(h.has_value());
  CHECK(h->compression_type == kCompressionZstd);
  auto bad = zstd;
  bad[104] = 2;
  CHECK_FALSE(parse_header(bad).has_value());
  bad[104] = 0;  // the bit says a type is there, the type says zlib: the spec forbids it
  CHECK_FALSE(parse_header(bad).has_value());
  bad = zstd;  // a zstd type without the bit
  store_be64(bad.data() + 72, 0);
  CHECK_FALSE(parse_header(bad).has_value());
}

TEST_CASE("qcow2 compressed: every byte reads back as compressed", "[qcow2][compressed]") {
  const uint8_t type = GENERATE(kCompressionDeflate, kCompressionZstd);
  const uint32_t bits = GENERATE(9u, 12u, 16u);
  INFO(type_name(type) << " cluster_bits " << bits);
  const uint64_t c = uint64_t{1} << bits;
  const uint64_t clusters = std::min<uint64_t>(c / 8, 40);
  auto b = build(type, bits, (clusters + 3) * c, clusters);
  CHECK(check_bytes(b.bytes).clean());
  auto file = std::make_shared<MemoryFile>(b.bytes, true);
  auto backend = open_image(file, true);
  CHECK(read_all(backend) == b.plain);
  // Small reads at odd places cross compressed clusters and the per-queue cache.
  auto disk = SyncDisk::open(backend);
  REQUIRE(disk.has_value());
  for (uint64_t off = 512; off + 1536 <= b.plain.size(); off += c / 2 + 512) {
    std::vector<uint8_t> got(1536);
    REQUIRE(disk->read(off, got).has_value());
    CHECK(std::equal(got.begin(), got.end(), b.plain.begin() + static_cast<ptrdiff_t>(off)));
  }
}

TEST_CASE("qcow2 compressed: sequential small reads decompress a cluster once", "[qcow2][compressed]") {
  const uint8_t type = GENERATE(kCompressionDeflate, kCompressionZstd);
  const uint64_t c = 65536;
  auto b = build(type, 16, 1 << 20, 4);
  auto file = std::make_shared<MemoryFile>(b.bytes, true);
  auto backend = open_image(file, true);
  auto disk = SyncDisk::open(backend);
  REQUIRE(disk.has_value());
  std::vector<uint8_t> sector(512);
  REQUIRE(disk->read(0, sector).has_value());  // loads the L2 table, unpacks cluster 0
  const uint64_t before = file->requests();
  for (uint64_t off = c; off < 2 * c; off += 512) {
    REQUIRE(disk->read(off, sector).has_value());
    REQUIRE(std::equal(sector.begin(), sector.end(), b.plain.begin() + static_cast<ptrdiff_t>(off)));
  }
  CHECK(file->requests() - before == 1);  // 128 reads of cluster 1: one file read
}

TEST_CASE("qcow2 compressed: a write copies the cluster out, then reads and checks clean",
          "[qcow2][compressed]") {
  const uint8_t type = GENERATE(kCompressionDeflate, kCompressionZstd);
  INFO(type_name(type));
  const uint64_t c = 65536;
  auto b = build(type, 16, 1 << 20, 6);
  auto want = b.plain;
  auto file = std::make_shared<MemoryFile>(b.bytes);
  {
    auto backend = open_image(file, false);
    auto disk = SyncDisk::open(backend);
    REQUIRE(disk.has_value());
    // Partial writes (one crossing from cluster 1 into 2), a whole-cluster write, a partial
    // write-zeroes (a write of zeroes), a whole-cluster write-zeroes and a discard.
    std::vector<uint8_t> data(4096, 0xa7);
    REQUIRE(disk->write(c + 1000, {data.data(), 512}).has_value());
    std::fill_n(want.begin() + static_cast<ptrdiff_t>(c + 1000), 512, 0xa7);
    REQUIRE(disk->write(3 * c - 2048, data).has_value());
    std::fill_n(want.begin() + static_cast<ptrdiff_t>(3 * c - 2048), 4096, 0xa7);
    std::vector<uint8_t> whole(c, 0x5c);
    REQUIRE(disk->write(0, whole).has_value());
    std::fill_n(want.begin(), c, 0x5c);
    REQUIRE(disk->write_zeroes(3 * c + 512, 1024, false).has_value());
    std::fill_n(want.begin() + static_cast<ptrdiff_t>(3 * c + 512), 1024, 0);
    REQUIRE(disk->write_zeroes(4 * c, c, true).has_value());
    std::fill_n(want.begin() + static_cast<ptrdiff_t>(4 * c), c, 0);
    REQUIRE(disk->discard(5 * c, c).has_value());
    std::fill_n(want.begin() + static_cast<ptrdiff_t>(5 * c), c, 0);
    REQUIRE(disk->flush().has_value());
    std::vector<uint8_t> got(want.size());
    REQUIRE(disk->read(0, got).has_value());
    CHECK(got == want);
  }
  // Compressed bytes are leaked, never freed; nothing is referenced wrongly.
  auto report = check_bytes(file->bytes());
  CHECK(report.errors == 0);
  auto again = open_image(std::make_shared<MemoryFile>(file->bytes(), true), true);
  CHECK(read_all(again) == want);
  // The written clusters are normal clusters now; the untouched ones are still compressed.
  const uint64_t l2 = 4 * c;
  for (uint64_t i : {0, 1, 2, 3}) CHECK_FALSE(load_be64(file->bytes().data() + l2 + 8 * i) & kL2Compressed);
  CHECK(load_be64(file->bytes().data() + l2 + 8 * 4) == kL2ZeroFlag);
  CHECK(load_be64(file->bytes().data() + l2 + 8 * 5) == kL2ZeroFlag);
}

TEST_CASE("qcow2 compressed: a clone reads and copies from a compressed backing image",
          "[qcow2][compressed]") {
  const uint8_t type = GENERATE(kCompressionDeflate, kCompressionZstd);
  INFO(type_name(type));
  const uint64_t c = 65536;
  auto golden = build(type, 16, 1 << 20, 8);
  auto golden_backend = open_image(std::make_shared<MemoryFile>(golden.bytes, true), true);
  auto overlay = format_new_image({1 << 20, 16, "golden.qcow2", "qcow2"});
  REQUIRE(overlay.has_value());
  auto file = std::make_shared<MemoryFile>(*overlay);
  auto clone = open_image(file, false, golden_backend);
  CHECK(read_all(clone) == golden.plain);
  auto want = golden.plain;
  {
    auto disk = SyncDisk::open(clone);
    REQUIRE(disk.has_value());
    std::vector<uint8_t> data(1024, 0x3e);
    REQUIRE(disk->write(2 * c + 4096, data).has_value());
    std::fill_n(want.begin() + static_cast<ptrdiff_t>(2 * c + 4096), 1024, 0x3e);
    REQUIRE(disk->discard(3 * c, c).has_value());  // hides the golden's cluster
    std::fill_n(want.begin() + static_cast<ptrdiff_t>(3 * c), c, 0);
    REQUIRE(disk->flush().has_value());
  }
  CHECK(read_all(clone) == want);
  CHECK(check_bytes(file->bytes()).clean());
}

TEST_CASE("qcow2 compressed: hostile descriptors and payloads fail that read with EIO",
          "[qcow2][compressed]") {
  const uint8_t type = GENERATE(kCompressionDeflate, kCompressionZstd);
  INFO(type_name(type));
  const uint32_t bits = 16;
  const uint64_t c = 65536;
  auto good = build(type, bits, 1 << 20, 4);
  const uint64_t l2 = 4 * c;
  auto with_entry = [&](uint64_t i, uint64_t e) {
    auto b = good.bytes;
    store_be64(b.data() + l2 + 8 * i, e);
    return b;
  };
  const auto ce = compressed_extent(good.entries[1], bits);
  SECTION("past the end of the file") {
    CHECK(read_cluster(with_entry(1, descriptor(good.bytes.size() + 512, 600, bits)), 1, c) == -EIO);
  }
  SECTION("the largest range, starting in the last sector of the file") {
    const uint64_t e = kL2Compressed | (uint64_t{0xff} << 54) | (good.bytes.size() - 100);
    CHECK(read_cluster(with_entry(1, e), 1, c) == -EIO);
  }
  SECTION("in the header cluster") {
    CHECK(read_cluster(with_entry(1, descriptor(0, 600, bits)), 1, c) == -EIO);
  }
  SECTION("too few sectors for the data") {
    CHECK(read_cluster(with_entry(1, descriptor(ce.offset, 16, bits)), 1, c) == -EIO);
  }
  SECTION("shifted: garbage in place of the stream") {
    CHECK(read_cluster(with_entry(1, descriptor(ce.offset + 7, ce.length, bits)), 1, c) == -EIO);
  }
  SECTION("pointing at the L2 table") {
    CHECK(read_cluster(with_entry(1, descriptor(l2, 4096, bits)), 1, c) == -EIO);
  }
  SECTION("a stream of half a cluster") {
    auto b = good.bytes;
    const auto packed = compress(type, std::vector<uint8_t>(c / 2, 9));
    const uint64_t at = b.size();
    b.insert(b.end(), packed.begin(), packed.end());
    b.resize((b.size() + 511) / 512 * 512);
    store_be64(b.data() + l2 + 8, descriptor(at, packed.size(), bits));
    CHECK(read_cluster(b, 1, c) == -EIO);
  }
  SECTION("corrupted bytes inside the stream") {
    auto b = good.bytes;
    for (uint64_t k = 0; k < 64 && ce.offset + 8 + k < b.size(); ++k) b[ce.offset + 8 + k] ^= 0x5a;
    const int r = read_cluster(b, 1, c);
    // Corruption that still decodes to a full cluster is possible for deflate (no checksum);
    // either way the read completes without a crash, and EIO is the only error.
    CHECK((r == 0 || r == -EIO));
  }
  // The other clusters of a damaged image still read.
  CHECK(read_cluster(with_entry(1, descriptor(good.bytes.size() + 512, 600, bits)), 2, c) == 0);
}

TEST_CASE("qcow2 compressed: a zstd frame asking for a huge window is refused", "[qcow2][compressed]") {
  // A frame without a content size and with a 128 MiB window (the encoder's choice): the
  // decoder must refuse it rather than allocate the window.
  const uint64_t c = 65536;
  const auto plain = plain_cluster(c, 1);
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  REQUIRE(cctx != nullptr);
  REQUIRE_FALSE(ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_windowLog, 27)));
  REQUIRE_FALSE(ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0)));
  std::vector<uint8_t> out(ZSTD_compressBound(c) + 64);
  ZSTD_inBuffer in{plain.data(), plain.size(), 0};
  ZSTD_outBuffer o{out.data(), out.size(), 0};
  // Two calls, so the encoder cannot learn the input size from a single ZSTD_e_end.
  REQUIRE_FALSE(ZSTD_isError(ZSTD_compressStream2(cctx, &o, &in, ZSTD_e_continue)));
  size_t left = 1;
  while (left != 0) {
    left = ZSTD_compressStream2(cctx, &o, &in, ZSTD_e_end);
    REQUIRE_FALSE(ZSTD_isError(left));
  }
  ZSTD_freeCCtx(cctx);
  out.resize(o.pos);
  // RFC 8878 3.1.1.1: byte 4 is the frame header descriptor (bit 5: single segment, no
  // window descriptor); byte 5 the window descriptor, windowLog = 10 + (byte >> 3).
  REQUIRE(out.size() > 6);
  REQUIRE((out[4] & 0x20) == 0);
  REQUIRE(10 + (out[5] >> 3) == 27);
  // Valid all the same: the one-shot decoder (which needs no window) restores it.
  std::vector<uint8_t> check_out(c);
  REQUIRE(ZSTD_decompress(check_out.data(), c, out.data(), out.size()) == c);
  REQUIRE(check_out == plain);

  auto d = Decompressor::create(kCompressionZstd);
  REQUIRE(d.has_value());
  std::vector<uint8_t> cluster(c);
  CHECK(d->decompress(out, cluster) == -EIO);
  // The same decoder still works afterwards.
  const auto ok = zstd_frame(plain);
  CHECK(d->decompress(ok, cluster) == 0);
  CHECK(cluster == plain);
}

TEST_CASE("qcow2 compressed: decompression is bounded by the cluster", "[qcow2][compressed]") {
  const uint8_t type = GENERATE(kCompressionDeflate, kCompressionZstd);
  auto d = Decompressor::create(type);
  REQUIRE(d.has_value());
  // Two clusters' worth of data: decoding stops after one (the spec: "decompression stops
  // when it has produced a cluster of data").
  std::vector<uint8_t> two(2 * 4096);
  for (size_t i = 0; i < two.size(); ++i) two[i] = static_cast<uint8_t>(i * 7);
  std::vector<uint8_t> out(4096);
  CHECK(d->decompress(compress(type, two), out) == 0);
  CHECK(std::equal(out.begin(), out.end(), two.begin()));
  // Empty and garbage input.
  CHECK(d->decompress({}, out) == -EIO);
  std::vector<uint8_t> junk(1000, 0xff);
  CHECK(d->decompress(junk, out) == -EIO);
  CHECK_FALSE(Decompressor::create(2).has_value());
}
