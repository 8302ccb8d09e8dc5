// Unit tests of the qcow2 format layer over in-memory files (tests/fakes/memory_file.hpp):
// header parsing against hostile input, reads through a backing image, copy-on-write,
// allocation, the L2 cache, zero clusters, refusals at open, and crash consistency with a
// file that loses its unflushed writes at every point of a workload.
#include <catch2/catch.hpp>

#include <random>

#include <spdlog/spdlog.h>

#include "blockdev/qcow2/qcow2_backend.hpp"
#include "blockdev/qcow2/qcow2_check.hpp"
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

std::vector<uint8_t> new_image(uint64_t size, uint32_t cluster_bits = 16, std::string backing = "",
                               std::string backing_format = "") {
  auto img = format_new_image({size, cluster_bits, std::move(backing), std::move(backing_format)});
  REQUIRE(img.has_value());
  return *img;
}

std::vector<uint8_t> pattern(uint64_t size, uint8_t seed) {
  std::vector<uint8_t> v(size);
  for (uint64_t i = 0; i < size; ++i) v[i] = static_cast<uint8_t>((i / 512 * 31 + i + seed) | 1);
  return v;
}

struct Image {
  std::shared_ptr<MemoryFile> file;
  std::shared_ptr<Backend> backend;
};

Image open_image(std::vector<uint8_t> bytes, std::shared_ptr<Backend> backing = nullptr,
                 bool read_only = false, size_t l2_cache = 32) {
  Image img;
  img.file = std::make_shared<MemoryFile>(std::move(bytes));
  Qcow2Options o;
  o.read_only = read_only;
  o.l2_cache_tables = l2_cache;
  auto b = Qcow2Backend::open(img.file, std::move(backing), o);
  INFO((b ? "" : b.error().message()));
  REQUIRE(b.has_value());
  img.backend = *b;
  return img;
}

std::vector<uint8_t> read_all(Backend& b, uint64_t offset, uint64_t len) {
  auto disk = SyncDisk::open(std::shared_ptr<Backend>(&b, [](Backend*) {}));
  REQUIRE(disk.has_value());
  std::vector<uint8_t> out(len);
  auto r = disk->read(offset, out);
  INFO((r ? "" : r.error().message()));
  REQUIRE(r.has_value());
  return out;
}

std::string refusal(std::vector<uint8_t> bytes) {
  auto h = parse_header(bytes);
  REQUIRE_FALSE(h.has_value());
  return h.error().message();
}

}  // namespace

TEST_CASE("qcow2: a new image parses back and checks clean", "[qcow2]") {
  auto bytes = new_image(10ull << 30, 16, "golden.raw", "raw");
  auto h = parse_header(bytes);
  REQUIRE(h.has_value());
  CHECK(h->version == 3);
  CHECK(h->size == (10ull << 30));
  CHECK(h->cluster_bits == 16);
  CHECK(h->backing_file == "golden.raw");
  CHECK(h->backing_format == "raw");
  CHECK(h->l1_size == l1_entries_for(10ull << 30, 16));
  auto report = check_bytes(bytes);
  CHECK(report.clean());
  CHECK(report.referenced_clusters == 4);
}

TEST_CASE("qcow2: hostile headers are refused with the reason", "[qcow2]") {
  const auto good = new_image(1 << 20);
  auto with = [&](size_t at, uint64_t v, int width) {
    auto b = good;
    if (width == 8) store_be64(b.data() + at, v);
    if (width == 4) store_be32(b.data() + at, static_cast<uint32_t>(v));
    return b;
  };
  CHECK_THAT(refusal(with(0, 0x12345678, 4)), Catch::Contains("bad magic"));
  CHECK_THAT(refusal(with(4, 2, 4)), Catch::Contains("version 2"));
  CHECK_THAT(refusal(with(4, 4, 4)), Catch::Contains("unknown version"));
  CHECK_THAT(refusal(with(20, 8, 4)), Catch::Contains("cluster_bits"));
  CHECK_THAT(refusal(with(20, 22, 4)), Catch::Contains("cluster_bits"));
  CHECK_THAT(refusal(with(32, 1, 4)), Catch::Contains("encrypted"));
  CHECK_THAT(refusal(with(72, 1ull << 40, 8)), Catch::Contains("unknown incompatible"));
  CHECK_THAT(refusal(with(72, kIncompatCorrupt, 8)), Catch::Contains("corrupt"));
  CHECK_THAT(refusal(with(72, kIncompatExternalData, 8)), Catch::Contains("external data"));
  CHECK_THAT(refusal(with(72, kIncompatExtendedL2, 8)), Catch::Contains("extended L2"));
  CHECK_THAT(refusal(with(24, 1ull << 62, 8)), Catch::Contains("above the limit"));
  CHECK_THAT(refusal(with(24, 1000, 8)), Catch::Contains("multiple of 512"));
  CHECK_THAT(refusal(with(24, 1ull << 40, 8)), Catch::Contains("cannot map"));
  CHECK_THAT(refusal(with(40, 65536 + 512, 8)), Catch::Contains("L1 table offset"));
  CHECK_THAT(refusal(with(48, 0, 8)), Catch::Contains("refcount table offset"));
  CHECK_THAT(refusal(with(100, 100, 4)), Catch::Contains("header_length"));
  CHECK_THAT(refusal(with(96, 7, 4)), Catch::Contains("refcount_order"));
  // A backing file name running out of the header cluster, or longer than the spec allows.
  auto b = with(8, 65530, 8);
  store_be32(b.data() + 16, 100);
  CHECK_THAT(refusal(b), Catch::Contains("backing file name"));
  b = with(8, 1024, 8);
  store_be32(b.data() + 16, 2000);
  CHECK_THAT(refusal(b), Catch::Contains("backing file name"));
  // An extension whose length runs past the cluster.
  b = good;
  store_be32(b.data() + 104, 0x12345678);
  store_be32(b.data() + 108, 70000);
  CHECK_THAT(refusal(b), Catch::Contains("extension"));
  // Truncated input.
  CHECK_THAT(refusal({good.begin(), good.begin() + 50}), Catch::Contains("too short"));
}

TEST_CASE("qcow2: an empty overlay reads its backing image, zeroes past its end", "[qcow2]") {
  auto backing = std::make_shared<MemoryFile>(pattern(96 * 1024, 7), true);
  auto img = open_image(new_image(256 * 1024, 16, "b", "raw"), backing);
  CHECK(img.backend->info().size == 256 * 1024);
  CHECK(img.backend->info().max_queues == 1);
  auto got = read_all(*img.backend, 0, 256 * 1024);
  auto want = pattern(96 * 1024, 7);
  want.resize(256 * 1024, 0);
  CHECK(got == want);
}

TEST_CASE("qcow2: partial writes copy the rest of the cluster from the backing image", "[qcow2]") {
  auto backing = std::make_shared<MemoryFile>(pattern(1 << 20, 3), true);
  std::vector<uint8_t> bytes;
  auto want = pattern(1 << 20, 3);
  {
    auto img = open_image(new_image(1 << 20, 16, "b", "raw"), backing);
    auto disk = SyncDisk::open(img.backend);
    REQUIRE(disk.has_value());
    const auto data = pattern(4096 + 512, 99);
    // Crosses a cluster boundary: two clusters, each partly from the backing image.
    REQUIRE(disk->write(65536 - 2048, data).has_value());
    std::copy(data.begin(), data.end(), want.begin() + 65536 - 2048);
    REQUIRE(disk->flush().has_value());
    std::vector<uint8_t> got(1 << 20);
    REQUIRE(disk->read(0, got).has_value());
    CHECK(got == want);
    bytes = img.file->bytes();
  }
  auto report = check_bytes(bytes);
  CHECK(report.clean());
  CHECK(report.data_clusters == 2);
  auto again = open_image(bytes, backing, true);
  CHECK(read_all(*again.backend, 0, 1 << 20) == want);
}

TEST_CASE("qcow2: table updates wait in memory until the queue closes, then check clean",
          "[qcow2]") {
  auto img = open_image(new_image(1 << 20));
  {
    auto disk = SyncDisk::open(img.backend);
    REQUIRE(disk->write(512 * 1024, pattern(8192, 1)).has_value());
    // No flush yet: the file holds the data but no table references it (a leak at worst).
    const auto before = check_bytes(img.file->bytes());
    CHECK(before.errors == 0);
    CHECK(before.data_clusters == 0);
  }
  auto report = check_bytes(img.file->bytes());
  CHECK(report.clean());
  CHECK(report.data_clusters == 1);
  auto again = open_image(img.file->bytes(), nullptr, true);
  CHECK(read_all(*again.backend, 512 * 1024, 8192) == pattern(8192, 1));
}

TEST_CASE("qcow2: concurrent writes to one unallocated cluster allocate it once", "[qcow2]") {
  auto backing = std::make_shared<MemoryFile>(pattern(1 << 20, 5), true);
  auto img = open_image(new_image(1 << 20, 16, "b", "raw"), backing);
  auto want = pattern(1 << 20, 5);
  {
    auto q = img.backend->open_queue(8);
    REQUIRE(q.has_value());
    CHECK_FALSE(img.backend->open_queue(8).has_value());  // one queue at a time
    std::vector<std::vector<uint8_t>> data;
    std::vector<iovec> iovs(4);
    for (int i = 0; i < 4; ++i) data.push_back(pattern(4096, static_cast<uint8_t>(10 + i)));
    for (int i = 0; i < 4; ++i) {
      iovs[i] = iovec{data[i].data(), 4096};
      const uint64_t off = 131072 + 8192 * static_cast<uint64_t>(i);
      REQUIRE((*q)->submit({IoKind::kWrite, off, 4096, {&iovs[i], 1}, uint64_t(i), false}));
      std::copy(data[i].begin(), data[i].end(), want.begin() + static_cast<ptrdiff_t>(off));
    }
    auto done = hcnode::testing::wait_for(**q, 4);
    for (auto& c : done) CHECK(c.result == 0);
    CHECK(hcnode::testing::run(**q, {IoKind::kFlush, 0, 0, {}, 0, false}) == 0);
  }
  auto report = check_bytes(img.file->bytes());
  CHECK(report.clean());
  CHECK(report.data_clusters == 1);
  CHECK(read_all(*img.backend, 0, 1 << 20) == want);
}

TEST_CASE("qcow2: allocated clusters are read and rewritten in place with one file request each",
          "[qcow2]") {
  constexpr uint64_t c = 65536;
  auto img = open_image(new_image(1 << 20));
  auto want = std::vector<uint8_t>(1 << 20, 0);
  auto disk = SyncDisk::open(img.backend);
  auto put = [&](uint64_t off, const std::vector<uint8_t>& d) {
    REQUIRE(disk->write(off, d).has_value());
    std::copy(d.begin(), d.end(), want.begin() + static_cast<ptrdiff_t>(off));
  };
  auto get = [&](uint64_t off, uint64_t len) {
    std::vector<uint8_t> got(len);
    REQUIRE(disk->read(off, got).has_value());
    return got;
  };
  auto slice = [&](uint64_t off, uint64_t len) {
    return std::vector<uint8_t>(want.begin() + static_cast<ptrdiff_t>(off),
                                want.begin() + static_cast<ptrdiff_t>(off + len));
  };
  // Clusters 4, 5 are appended in order (adjacent on the host), then 3 (after them).
  put(4 * c, pattern(2 * c, 1));
  put(3 * c, pattern(c, 2));
  const size_t file_size = img.file->bytes().size();

  // Adjacent on the host: one request to the file for a read across the cluster boundary.
  uint64_t before = img.file->requests();
  CHECK(get(4 * c + 4096, c) == slice(4 * c + 4096, c));
  CHECK(img.file->requests() - before == 1);
  // Guest-adjacent but not host-adjacent (3 lies after 5): still correct, cluster by cluster.
  CHECK(get(3 * c + 512, c) == slice(3 * c + 512, c));
  // Rewrites of allocated clusters go in place: one request, the file does not grow.
  before = img.file->requests();
  put(4 * c + 8192, pattern(4096, 3));
  CHECK(img.file->requests() - before == 1);
  put(3 * c + c - 1024, pattern(2048, 4));  // across 3 | 4: not host-adjacent
  CHECK(img.file->bytes().size() == file_size);
  // Unallocated and allocated in one read: zeroes and data where each belongs.
  CHECK(get(2 * c, 3 * c) == slice(2 * c, 3 * c));
  CHECK(get(0, 1 << 20) == want);
  REQUIRE(disk->flush().has_value());
  CHECK(check_bytes(img.file->bytes()).clean());
}

TEST_CASE("qcow2: a small L2 cache evicts and reloads tables", "[qcow2]") {
  // 512-byte clusters: one L2 table maps 32 KiB, so 1 MiB needs 32 tables; the cache holds 2.
  auto img = open_image(new_image(1 << 20, 9), nullptr, false, 2);
  auto want = std::vector<uint8_t>(1 << 20, 0);
  {
    auto disk = SyncDisk::open(img.backend);
    for (uint64_t off = 0; off < (1 << 20); off += 40960) {
      auto d = pattern(1536, static_cast<uint8_t>(off >> 10));
      REQUIRE(disk->write(off, d).has_value());
      std::copy(d.begin(), d.end(), want.begin() + static_cast<ptrdiff_t>(off));
    }
    std::vector<uint8_t> got(1 << 20);
    REQUIRE(disk->read(0, got).has_value());
    CHECK(got == want);
  }
  auto report = check_bytes(img.file->bytes());
  CHECK(report.clean());
  auto again = open_image(img.file->bytes(), nullptr, true, 2);
  CHECK(read_all(*again.backend, 0, 1 << 20) == want);
}

TEST_CASE("qcow2: write-zeroes and discard of whole clusters read back as zeroes", "[qcow2]") {
  auto backing = std::make_shared<MemoryFile>(pattern(1 << 20, 9), true);
  auto img = open_image(new_image(1 << 20, 16, "b", "raw"), backing);
  auto want = pattern(1 << 20, 9);
  {
    auto disk = SyncDisk::open(img.backend);
    REQUIRE(disk->write(0, pattern(65536, 1)).has_value());  // allocated, then discarded
    REQUIRE(disk->discard(0, 65536).has_value());
    std::fill_n(want.begin(), 65536, 0);
    REQUIRE(disk->write_zeroes(131072, 65536 + 4096, false).has_value());  // backing cluster
    std::fill_n(want.begin() + 131072, 65536 + 4096, 0);
    REQUIRE(disk->flush().has_value());
    std::vector<uint8_t> got(1 << 20);
    REQUIRE(disk->read(0, got).has_value());
    CHECK(got == want);
  }
  CHECK(check_bytes(img.file->bytes()).clean());
  auto again = open_image(img.file->bytes(), backing, true);
  CHECK(read_all(*again.backend, 0, 1 << 20) == want);
}

TEST_CASE("qcow2: images hcnode cannot write safely open read-only only", "[qcow2]") {
  auto dirty = new_image(1 << 20);
  store_be64(dirty.data() + 72, kIncompatDirty);
  auto file = std::make_shared<MemoryFile>(dirty);
  auto rw = Qcow2Backend::open(file, nullptr, {});
  REQUIRE_FALSE(rw.has_value());
  CHECK_THAT(rw.error().message(), Catch::Contains("dirty"));
  Qcow2Options ro;
  ro.read_only = true;
  CHECK(Qcow2Backend::open(file, nullptr, ro).has_value());

  auto snaps = new_image(1 << 20);
  store_be32(snaps.data() + 60, 1);
  auto rw2 = Qcow2Backend::open(std::make_shared<MemoryFile>(snaps), nullptr, {});
  REQUIRE_FALSE(rw2.has_value());
  CHECK_THAT(rw2.error().message(), Catch::Contains("snapshots"));
}

TEST_CASE("qcow2: a corrupt L2 entry fails the read and stops writes", "[qcow2]") {
  std::vector<uint8_t> bytes;
  {
    auto img = open_image(new_image(1 << 20));
    auto disk = SyncDisk::open(img.backend);
    REQUIRE(disk->write(0, pattern(4096, 1)).has_value());
    REQUIRE(disk->flush().has_value());
    bytes = img.file->bytes();
  }
  const auto h = parse_header(bytes);
  const uint64_t l2 = load_be64(bytes.data() + h->l1_table_offset) & kOffsetMask;
  store_be64(bytes.data() + l2, 0x8000000000000000ull | 12345);  // unaligned data offset
  auto img = open_image(bytes);
  auto disk = SyncDisk::open(img.backend);
  std::vector<uint8_t> buf(4096);
  CHECK_FALSE(disk->read(0, buf).has_value());
  CHECK_FALSE(disk->write(65536 * 4, buf).has_value());  // refused from now on
}

// Crash consistency: run a workload of writes (partial and whole clusters, across L2 tables
// and refcount blocks), write-zeroes, discards and flushes; let the file lose power before its
// k-th request, for every k; keep none, all, or a random subset of the unflushed writes. The
// image must then check without errors (leaks are allowed) and every sector written before the
// last completed flush must read back as written.
TEST_CASE("qcow2: a crash at any point leaves a consistent image with flushed data intact",
          "[qcow2][crash]") {
  constexpr uint64_t kSize = 1 << 20;
  constexpr uint64_t kSector = 512;
  const auto backing_bytes = pattern(kSize / 2, 42);
  auto backing = std::make_shared<MemoryFile>(backing_bytes, true);
  std::vector<uint8_t> base(kSize, 0);
  std::copy(backing_bytes.begin(), backing_bytes.end(), base.begin());

  struct Op {
    IoKind kind;
    uint64_t offset, length;
    uint8_t seed;
  };
  std::vector<Op> ops;
  std::mt19937_64 rng(1234);
  for (int i = 0; i < 120; ++i) {
    const int pick = static_cast<int>(rng() % 10);
    if (pick < 6) {
      const uint64_t len = (1 + rng() % 24) * kSector;
      ops.push_back({IoKind::kWrite, (rng() % ((kSize - len) / kSector)) * kSector, len,
                     static_cast<uint8_t>(i)});
    } else if (pick < 7) {
      ops.push_back({IoKind::kWriteZeroes, (rng() % (kSize / 4096 - 4)) * 4096, 8192, 0});
    } else if (pick < 8) {
      ops.push_back({IoKind::kDiscard, (rng() % (kSize / 4096 - 4)) * 4096, 4096, 0});
    } else {
      ops.push_back({IoKind::kFlush, 0, 0, 0});
    }
  }

  // Runs the workload until the first failure; returns the model as of the last completed
  // flush, and which sectors were touched since.
  // (A discard may leave data or zeroes: discarded sectors are unknown until rewritten.)
  struct Outcome {
    std::vector<uint8_t> flushed;
    std::vector<bool> touched;
    std::vector<bool> unknown;
  };
  auto run = [&](std::shared_ptr<Backend> image) {
    Outcome out{base, std::vector<bool>(kSize / kSector, false),
                std::vector<bool>(kSize / kSector, false)};
    std::vector<uint8_t> model = base;
    std::vector<bool> unknown(kSize / kSector, false);
    auto disk = SyncDisk::open(image);
    REQUIRE(disk.has_value());
    for (const Op& op : ops) {
      Status s;
      if (op.kind == IoKind::kWrite) {
        auto d = pattern(op.length, op.seed);
        for (uint64_t i = op.offset / kSector; i < (op.offset + op.length) / kSector; ++i) {
          out.touched[i] = true;
          unknown[i] = false;
        }
        s = disk->write(op.offset, d);
        std::copy(d.begin(), d.end(), model.begin() + static_cast<ptrdiff_t>(op.offset));
      } else if (op.kind == IoKind::kFlush) {
        s = disk->flush();
        if (s) {
          out.flushed = model;
          out.unknown = unknown;
          std::fill(out.touched.begin(), out.touched.end(), false);
        }
      } else {
        for (uint64_t i = op.offset / kSector; i < (op.offset + op.length) / kSector; ++i) {
          out.touched[i] = true;
          unknown[i] = op.kind == IoKind::kDiscard;
        }
        s = op.kind == IoKind::kDiscard ? disk->discard(op.offset, op.length)
                                        : disk->write_zeroes(op.offset, op.length, false);
        std::fill_n(model.begin() + static_cast<ptrdiff_t>(op.offset), op.length, 0);
      }
      if (!s) break;
    }
    return out;
  };

  // A crash-free run counts the requests the workload makes of the file (512-byte clusters:
  // the workload spans many clusters, L2 tables and refcount blocks).
  uint64_t total = 0;
  {
    auto img = open_image(new_image(kSize, 9, "b", "raw"), backing, false, 4);
    run(img.backend);
    img.backend.reset();
    total = img.file->requests();
    CHECK(check_bytes(img.file->bytes()).clean());
  }
  REQUIRE(total > 100);
  uint64_t checked = 0;
  // Every crashed run logs its failed requests: quiet for the loop.
  const auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::off);
  // About 100 crash points spread over the whole workload (each tried three ways).
  const uint64_t step = std::max<uint64_t>(1, total / 100);
  for (uint64_t k = 1; k < total; k += step) {
    for (int mode = 0; mode < 3; ++mode) {
      auto img = open_image(new_image(kSize, 9, "b", "raw"), backing, false, 4);
      img.file->crash_at(k);
      const Outcome outcome = run(img.backend);
      img.backend.reset();  // the close's writeback fails too: the file is gone
      std::mt19937 pick(static_cast<uint32_t>(k * 3 + static_cast<uint64_t>(mode)));
      const auto after = img.file->crash_image([&](size_t) {
        return mode == 1 || (mode == 2 && pick() % 2 == 0);
      });
      INFO("crash before request " << k << " of " << total << ", mode " << mode);
      const auto report = check_bytes(after);
      REQUIRE(report.errors == 0);
      auto reopened = open_image(after, backing, true);
      const auto got = read_all(*reopened.backend, 0, kSize);
      uint64_t lost = 0;
      for (uint64_t s = 0; s < kSize / kSector; ++s) {
        if (outcome.touched[s] || outcome.unknown[s]) continue;
        lost += std::equal(got.begin() + static_cast<ptrdiff_t>(s * kSector),
                           got.begin() + static_cast<ptrdiff_t>((s + 1) * kSector),
                           outcome.flushed.begin() + static_cast<ptrdiff_t>(s * kSector))
                    ? 0
                    : 1;
      }
      REQUIRE(lost == 0);
      ++checked;
    }
  }
  spdlog::set_level(level);
  CHECK(checked > 100);
}
