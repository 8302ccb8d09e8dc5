// The rbd: and gluster:// backends against the real dev cluster: data written through a
// backend queue (multi-iovec, 32 in flight) is read back through the backend AND through an
// independent path (plain librbd / a separate gfapi instance).
#include <fcntl.h>
#include <poll.h>
#include <rados/librados.h>
#include <rbd/librbd.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/fakes/backend_driver.hpp"

#include "blockdev/gluster/gluster_backend.hpp"
#include "blockdev/open_backend.hpp"
#include "blockdev/rbd/rados_handles.hpp"
#include "tests/integration/requirements.hpp"

using namespace hcnode;
using namespace hcnode::blockdev;
using hcnode::testing::run;
using hcnode::testing::wait_for;

namespace {

constexpr size_t kQueueDepth = 32;

const char* rbd_pool() {
  const char* p = std::getenv("HCNODE_RBD_POOL");
  return p != nullptr ? p : "rbd";
}

std::vector<char> pattern(size_t size, unsigned seed) {
  std::vector<char> data(size);
  for (size_t i = 0; i < size; ++i) {
    data[i] = static_cast<char>(seed * 131 + i * 7 + i / 4096);
  }
  return data;
}

bool all_zero(const std::vector<char>& v) {
  return std::all_of(v.begin(), v.end(), [](char c) { return c == 0; });
}



IoRequest range(IoKind kind, uint64_t offset, uint64_t length) {
  IoRequest req;
  req.kind = kind;
  req.offset = offset;
  req.length = length;
  return req;
}

// kQueueDepth extents of 20 KiB in the first 64 MiB of the disk (one per 2 MiB; every fourth
// one, i % 4 == 1, crosses a 4 MiB object boundary), each written as three iovecs
// (4 KiB + 12 KiB + 4 KiB) and read back as two (10 KiB + 10 KiB), all in flight at once.
// The disk's space beyond 64 MiB is for the other checks.
struct Extents {
  static constexpr size_t kLen = 20 * 1024;
  static constexpr uint64_t kSpan = 64ull << 20;
  std::vector<uint64_t> offsets;
  std::vector<std::vector<char>> data;

  Extents() {
    for (size_t i = 0; i < kQueueDepth; ++i) {
      const uint64_t off = i % 4 == 1 ? (i + 1) * (2ull << 20) - kLen / 2
                                      : i * (2ull << 20) + (64 << 10) + (i % 4) * 1536;
      offsets.push_back(off);
      data.push_back(pattern(kLen, static_cast<unsigned>(i + 1)));
    }
  }

  void write_all(BackendQueue& q) {
    std::vector<std::vector<iovec>> iovs(kQueueDepth);
    for (size_t i = 0; i < kQueueDepth; ++i) {
      char* p = data[i].data();
      iovs[i] = {{p, 4096}, {p + 4096, 12288}, {p + 16384, 4096}};
      IoRequest req = range(IoKind::kWrite, offsets[i], kLen);
      req.iov = iovs[i];
      req.cookie = 100 + i;
      REQUIRE(q.submit(req).has_value());
    }
    CHECK(q.in_flight() <= kQueueDepth);
    check_completions(wait_for(q, kQueueDepth), 100);
  }

  void read_all_and_compare(BackendQueue& q) {
    std::vector<std::vector<char>> back(kQueueDepth, std::vector<char>(kLen));
    std::vector<std::vector<iovec>> iovs(kQueueDepth);
    for (size_t i = 0; i < kQueueDepth; ++i) {
      char* p = back[i].data();
      iovs[i] = {{p, kLen / 2}, {p + kLen / 2, kLen / 2}};
      IoRequest req = range(IoKind::kRead, offsets[i], kLen);
      req.iov = iovs[i];
      req.cookie = 200 + i;
      REQUIRE(q.submit(req).has_value());
    }
    check_completions(wait_for(q, kQueueDepth), 200);
    for (size_t i = 0; i < kQueueDepth; ++i) {
      INFO("extent " << i << " at " << offsets[i]);
      CHECK(back[i] == data[i]);
    }
  }

  static void check_completions(const std::vector<Completion>& done, uint64_t base) {
    std::set<uint64_t> cookies;
    for (const auto& c : done) {
      CHECK(c.result == 0);
      cookies.insert(c.cookie);
    }
    CHECK(cookies.size() == kQueueDepth);
    CHECK(*cookies.begin() == base);
    CHECK(*cookies.rbegin() == base + kQueueDepth - 1);
  }
};

// Submits `n` 4 KiB writes, then drain(): nothing may stay in flight.
void fill_queue_and_drain(BackendQueue& q, uint64_t base) {
  std::vector<char> buf = pattern(4096, 9);
  iovec v{buf.data(), buf.size()};
  for (size_t i = 0; i < kQueueDepth; ++i) {
    IoRequest req = range(IoKind::kWrite, base + i * 4096, 4096);
    req.iov = {&v, 1};
    req.cookie = 900 + i;
    REQUIRE(q.submit(req).has_value());
  }
  q.drain();
  CHECK(q.in_flight() == 0);
  std::vector<Completion> out;
  CHECK(q.reap(out) == kQueueDepth);
  for (const auto& c : out) CHECK(c.result == 0);
}

struct ImageCleanup {
  rados_ioctx_t io;
  std::string name;
  ~ImageCleanup() { rbd_remove(io, name.c_str()); }
};

// librbd read through a separate client and a fresh read-only open (no cache shared with the
// backend's client).
std::vector<char> rbd_read_fresh(const RadosIoCtx& io, const std::string& image, uint64_t off,
                                 size_t len) {
  auto handle = RbdImage::open(io, image, std::nullopt, /*read_only=*/true);
  REQUIRE(handle.has_value());
  std::vector<char> data(len);
  REQUIRE(rbd_read(handle->get(), off, len, data.data()) == static_cast<ssize_t>(len));
  return data;
}

}  // namespace

TEST_CASE("rbd backend: QD32 multi-iovec I/O, flush, zeroes, read-only, snapshot, errors",
          "[ceph][rbd][backend]") {
  const auto config = testing::require_ceph();
  // The independent path: our own librados client.
  auto cluster = RadosCluster::connect(config);
  REQUIRE(cluster.has_value());
  auto io = RadosIoCtx::create(*cluster, rbd_pool());
  REQUIRE(io.has_value());
  const std::string name = testing::unique_name("it-backend");
  const uint64_t size = 96ull << 20;
  int order = 22;  // 4 MiB objects
  const uint64_t features = RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK |
                            RBD_FEATURE_OBJECT_MAP | RBD_FEATURE_FAST_DIFF;
  REQUIRE(rbd_create2(io->get(), name.c_str(), size, features, &order) == 0);
  ImageCleanup cleanup{io->get(), name};
  const std::string uri_text = std::string("rbd:") + rbd_pool() + "/" + name;
  auto uri = parse_disk_uri(uri_text);
  REQUIRE(uri.has_value());

  SessionsConfig sc;
  sc.ceph = config;
  StorageSessions sessions(sc);
  Extents extents;
  {
    auto opened = open_backend(*uri, BackendOptions{false, CachePolicy::kWriteback}, sessions);
    INFO((opened ? std::string("ok") : opened.error().message()));
    REQUIRE(opened.has_value());
    auto backend = *opened;
    const auto& info = backend->info();
    CHECK(info.kind == "rbd");
    CHECK(info.size == size);
    CHECK(info.optimal_io_size == (4u << 20));
    CHECK(info.write_zeroes);
    CHECK(info.discard_granularity > 0);
    CHECK(backend->uri() == uri_text);
    CHECK(sessions.rados_client_address().has_value());

    auto queue = backend->open_queue(kQueueDepth);
    REQUIRE(queue.has_value());
    auto& q = **queue;
    extents.write_all(q);
    extents.read_all_and_compare(q);
    IoRequest flush = range(IoKind::kFlush, 0, 0);
    flush.cookie = 1;
    CHECK(run(q, flush) == 0);
    for (size_t i = 0; i < kQueueDepth; ++i) {
      INFO("extent " << i << " at " << extents.offsets[i] << " through plain librbd");
      CHECK(rbd_read_fresh(*io, name, extents.offsets[i], Extents::kLen) == extents.data[i]);
    }

    // Write-zeroes on an unaligned range (inside an extent) and a discard of a whole object.
    const uint64_t zoff = extents.offsets[1] + 1536;
    IoRequest zero = range(IoKind::kWriteZeroes, zoff, 12288);
    zero.cookie = 2;
    CHECK(run(q, zero) == 0);
    zero.may_unmap = true;
    zero.offset = extents.offsets[2] + 512;
    zero.length = 4096;
    CHECK(run(q, zero) == 0);
    IoRequest discard = range(IoKind::kDiscard, 64ull << 20, 4ull << 20);
    discard.cookie = 3;
    CHECK(run(q, discard) == 0);
    CHECK(run(q, flush) == 0);
    CHECK(all_zero(rbd_read_fresh(*io, name, zoff, 12288)));
    CHECK(all_zero(rbd_read_fresh(*io, name, extents.offsets[2] + 512, 4096)));
    CHECK(rbd_read_fresh(*io, name, extents.offsets[1], 1536) ==
          std::vector<char>(extents.data[1].begin(), extents.data[1].begin() + 1536));
    CHECK(all_zero(rbd_read_fresh(*io, name, 64ull << 20, 4ull << 20)));
    // And through the backend.
    std::vector<char> back(12288);
    iovec v{back.data(), back.size()};
    IoRequest read = range(IoKind::kRead, zoff, back.size());
    read.iov = {&v, 1};
    read.cookie = 4;
    CHECK(run(q, read) == 0);
    CHECK(all_zero(back));

    fill_queue_and_drain(q, 72ull << 20);
    // Out of range: EINVAL at submit.
    auto past = q.submit(range(IoKind::kDiscard, size - 4096, 8192));
    REQUIRE_FALSE(past.has_value());
    CHECK(past.error().code() == EINVAL);
  }  // queue drained and closed, then the image

  {
    auto ro = open_backend(*uri, BackendOptions{true, CachePolicy::kWriteback}, sessions);
    REQUIRE(ro.has_value());
    CHECK((*ro)->info().read_only);
    auto queue = (*ro)->open_queue(4);
    REQUIRE(queue.has_value());
    std::vector<char> buf(4096);
    iovec v{buf.data(), buf.size()};
    IoRequest write = range(IoKind::kWrite, 0, 4096);
    write.iov = {&v, 1};
    auto refused = (*queue)->submit(write);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code() == EROFS);
    IoRequest read = write;
    read.kind = IoKind::kRead;
    read.offset = extents.offsets[3];
    read.cookie = 5;
    CHECK(run(**queue, read) == 0);
    CHECK(std::equal(buf.begin(), buf.end(), extents.data[3].begin()));
  }

  // A snapshot: opens read-only only, and shows the data as of the snapshot.
  {
    auto handle = RbdImage::open(*io, name);
    REQUIRE(handle.has_value());
    REQUIRE(rbd_snap_create(handle->get(), "s1") == 0);
  }
  auto snap_uri = parse_disk_uri(uri_text + "@s1");
  REQUIRE(snap_uri.has_value());
  {
    auto rw = open_backend(*snap_uri, BackendOptions{false, CachePolicy::kWriteback}, sessions);
    REQUIRE_FALSE(rw.has_value());
    CHECK(rw.error().code() == EROFS);
    auto snap = open_backend(*snap_uri, BackendOptions{true, CachePolicy::kWriteback}, sessions);
    REQUIRE(snap.has_value());
    auto queue = (*snap)->open_queue(kQueueDepth);
    REQUIRE(queue.has_value());
    auto refused = (*queue)->submit(range(IoKind::kWriteZeroes, 0, 4096));
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code() == EROFS);
    Extents at_snap = extents;
    // Extents 1 and 2 were partly zeroed above; compare the untouched ones.
    at_snap.offsets.erase(at_snap.offsets.begin() + 1, at_snap.offsets.begin() + 3);
    at_snap.data.erase(at_snap.data.begin() + 1, at_snap.data.begin() + 3);
    std::vector<std::vector<char>> back(at_snap.offsets.size(), std::vector<char>(Extents::kLen));
    std::vector<iovec> iovs(at_snap.offsets.size());
    for (size_t i = 0; i < at_snap.offsets.size(); ++i) {
      iovs[i] = {back[i].data(), Extents::kLen};
      IoRequest read = range(IoKind::kRead, at_snap.offsets[i], Extents::kLen);
      read.iov = {&iovs[i], 1};
      read.cookie = 300 + i;
      REQUIRE((*queue)->submit(read).has_value());
    }
    auto done = wait_for(**queue, at_snap.offsets.size());
    for (const auto& c : done) CHECK(c.result == 0);
    for (size_t i = 0; i < at_snap.offsets.size(); ++i) CHECK(back[i] == at_snap.data[i]);
  }
  {
    auto handle = RbdImage::open(*io, name);
    REQUIRE(handle.has_value());
    CHECK(rbd_snap_remove(handle->get(), "s1") == 0);
  }

  // Missing image and missing pool: clean errors naming the disk.
  auto missing_uri = parse_disk_uri(uri_text + "-missing");
  REQUIRE(missing_uri.has_value());
  auto missing = open_backend(*missing_uri, BackendOptions{}, sessions);
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().code() == ENOENT);
  CHECK(missing.error().context() == uri_text + "-missing: no such image");
  auto no_pool = open_backend(parse_disk_uri("rbd:hcnode-no-such-pool/x").value(), BackendOptions{},
                              sessions);
  REQUIRE_FALSE(no_pool.has_value());
  CHECK(no_pool.error().code() == ENOENT);
}

namespace {

// A second connection to the volume, separate from every StorageSessions one. Kept for the
// process, like the sessions (glfs_fini costs ~10 s; reachable through this static, so
// LeakSanitizer does not count it).
const GlfsVolume& independent_volume(const GlusterServer& server) {
  static GlfsVolume* volume = [&] {
    auto v = GlfsVolume::connect(server);
    INFO((v ? std::string("ok") : v.error().message()));
    REQUIRE(v.has_value());
    return new GlfsVolume(std::move(*v));
  }();
  return *volume;
}

}  // namespace

TEST_CASE("gluster backend: QD32 multi-iovec I/O, flush, zeroes, read-only, errors",
          "[gluster][backend]") {
  const auto server = testing::require_gluster();
  // glfs_fini costs ~10 s: one session for the process, deliberately never destroyed (it stays
  // reachable through this static, so LeakSanitizer does not count it).
  static StorageSessions* sessions = new StorageSessions();
  GlusterLocation where{server.host, server.port, server.volume,
                        "/" + testing::unique_name("it-backend") + ".raw"};
  auto volume = sessions->gluster(where);
  INFO((volume ? std::string("ok") : volume.error().message()));
  REQUIRE(volume.has_value());
  const uint64_t size = 96ull << 20;
  {
    auto file = GlfsFile::create(**volume, where.path, O_RDWR | O_TRUNC);
    REQUIRE(file.has_value());
    REQUIRE(glfs_ftruncate(file->get(), static_cast<off_t>(size), nullptr, nullptr) == 0);
  }
  struct Unlink {
    std::shared_ptr<GlfsVolume> volume;
    std::string path;
    ~Unlink() { (void)volume->unlink(path); }
  } unlink{*volume, where.path};
  const DiskUri uri{where};

  Extents extents;
  const auto cache = GENERATE(CachePolicy::kNone, CachePolicy::kWriteback);
  {
    auto opened = open_backend(uri, BackendOptions{false, cache}, *sessions);
    INFO((opened ? std::string("ok") : opened.error().message()));
    REQUIRE(opened.has_value());
    auto backend = *opened;
    CHECK(backend->info().kind == "gluster");
    CHECK(backend->info().size == size);
    CHECK(std::dynamic_pointer_cast<GlusterBackend>(backend)->uses_direct_io() ==
          (cache == CachePolicy::kNone));
    auto queue = backend->open_queue(kQueueDepth);
    REQUIRE(queue.has_value());
    auto& q = **queue;
    extents.write_all(q);
    extents.read_all_and_compare(q);

    // Unaligned offset and length: the buffered descriptor under cache=none.
    auto odd = pattern(1000, 77);
    iovec ov[2] = {{odd.data(), 300}, {odd.data() + 300, 700}};
    IoRequest write = range(IoKind::kWrite, (80ull << 20) + 123, odd.size());
    write.iov = ov;
    write.cookie = 1;
    CHECK(run(q, write) == 0);

    IoRequest flush = range(IoKind::kFlush, 0, 0);
    flush.cookie = 2;
    CHECK(run(q, flush) == 0);
    // Through a gfapi instance of its own (glfs_new + glfs_init), not the backend's shared
    // glfs_t, whose client-side translators (write-behind, io-cache) could answer from what
    // the backend wrote without it ever reaching the bricks.
    auto independent = GlfsFile::open(independent_volume(server), where.path, O_RDONLY);
    REQUIRE(independent.has_value());
    for (size_t i = 0; i < kQueueDepth; ++i) {
      std::vector<char> back(Extents::kLen);
      REQUIRE(independent->pread_all(back.data(), back.size(), extents.offsets[i]).has_value());
      INFO("extent " << i << " through a separate gfapi instance");
      CHECK(back == extents.data[i]);
    }
    std::vector<char> odd_back(odd.size());
    REQUIRE(independent->pread_all(odd_back.data(), odd_back.size(), (80ull << 20) + 123)
                .has_value());
    CHECK(odd_back == odd);

    IoRequest zero = range(IoKind::kWriteZeroes, extents.offsets[1] + 4096, 8192);
    zero.cookie = 3;
    CHECK(run(q, zero) == 0);
    IoRequest discard = range(IoKind::kDiscard, extents.offsets[2], 16384);
    discard.cookie = 4;
    CHECK(run(q, discard) == 0);
    CHECK(run(q, flush) == 0);
    std::vector<char> z(8192);
    REQUIRE(independent->pread_all(z.data(), z.size(), extents.offsets[1] + 4096).has_value());
    CHECK(all_zero(z));
    std::vector<char> d(16384);
    iovec dv{d.data(), d.size()};
    IoRequest read = range(IoKind::kRead, extents.offsets[2], d.size());
    read.iov = {&dv, 1};
    read.cookie = 5;
    CHECK(run(q, read) == 0);
    CHECK(all_zero(d));

    fill_queue_and_drain(q, 72ull << 20);
  }
  {
    auto ro = open_backend(uri, BackendOptions{true, cache}, *sessions);
    REQUIRE(ro.has_value());
    auto queue = (*ro)->open_queue(4);
    REQUIRE(queue.has_value());
    auto refused = (*queue)->submit(range(IoKind::kDiscard, 0, 4096));
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code() == EROFS);
    std::vector<char> back(Extents::kLen);
    iovec v{back.data(), back.size()};
    IoRequest read = range(IoKind::kRead, extents.offsets[5], back.size());
    read.iov = {&v, 1};
    read.cookie = 6;
    CHECK(run(**queue, read) == 0);
    CHECK(back == extents.data[5]);
  }
  GlusterLocation missing = where;
  missing.path += "-missing";
  auto gone = open_backend(DiskUri{missing}, BackendOptions{}, *sessions);
  REQUIRE_FALSE(gone.has_value());
  CHECK(gone.error().code() == ENOENT);
  CHECK(gone.error().context() == DiskUri{missing}.to_string() + ": no such file");
}
