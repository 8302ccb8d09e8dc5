// The io_uring file backend on real files: /var/tmp (ext4 here: O_DIRECT works) and /dev/shm
// (tmpfs: O_DIRECT depends on the kernel, and there is no FALLOC_FL_ZERO_RANGE).
#include "blockdev/file/file_backend.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/fakes/backend_driver.hpp"

#include "blockdev/open_backend.hpp"

using namespace hcnode;
using namespace hcnode::blockdev;
using hcnode::testing::run;
using hcnode::testing::wait_for;

namespace {

// A sparse temp file of `size` bytes, removed at scope exit.
struct TempFile {
  std::string path;
  TempFile(const std::string& dir, uint64_t size) {
    std::random_device rd;
    path = dir + "/hcnode-file-backend-" + std::to_string(::getpid()) + "-" +
           std::to_string(rd() % 1000000) + ".img";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(::ftruncate(fd, static_cast<off_t>(size)) == 0);
    ::close(fd);
  }
  ~TempFile() { ::unlink(path.c_str()); }
  std::vector<char> read(uint64_t offset, size_t len) const {
    std::vector<char> data(len);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    REQUIRE(::pread(fd, data.data(), len, static_cast<off_t>(offset)) == static_cast<ssize_t>(len));
    ::close(fd);
    return data;
  }
};

struct FreeDeleter {
  void operator()(char* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<char, FreeDeleter>;
Buffer aligned_buffer(size_t size) {
  auto* p = static_cast<char*>(std::aligned_alloc(4096, size));
  REQUIRE(p != nullptr);
  return Buffer(p);
}

void fill(char* p, size_t n, char seed) {
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<char>(seed + static_cast<char>(i * 31 + i / 512));
}

std::shared_ptr<FileBackend> open_file(const std::string& path, CachePolicy cache,
                                       bool read_only = false) {
  auto backend = FileBackend::open(FileLocation{path}, BackendOptions{read_only, cache});
  INFO((backend ? std::string("ok") : backend.error().message()));
  REQUIRE(backend.has_value());
  return *backend;
}



IoRequest rw(IoKind kind, uint64_t offset, const std::vector<iovec>& iov) {
  IoRequest req;
  req.kind = kind;
  req.offset = offset;
  for (const auto& v : iov) req.length += v.iov_len;
  req.iov = iov;
  return req;
}

IoRequest range(IoKind kind, uint64_t offset, uint64_t length) {
  IoRequest req;
  req.kind = kind;
  req.offset = offset;
  req.length = length;
  return req;
}

bool all_zero(const char* p, size_t n) {
  return std::all_of(p, p + n, [](char c) { return c == 0; });
}

}  // namespace

TEST_CASE("file backend writes and reads back multi-iovec requests, aligned and unaligned",
          "[blockdev][file_backend]") {
  const auto cache = GENERATE(CachePolicy::kNone, CachePolicy::kWriteback);
  TempFile file("/var/tmp", 1 << 20);
  auto backend = open_file(file.path, cache);
  CHECK(backend->info().size == (1u << 20));
  CHECK(backend->info().kind == "file");
  CHECK(backend->uri() == "file:" + file.path);
  // /var/tmp is ext4 here: O_DIRECT is available.
  CHECK(backend->uses_direct_io() == (cache == CachePolicy::kNone));
  auto queue = backend->open_queue(8);
  REQUIRE(queue.has_value());
  auto& q = **queue;
  CHECK(q.depth() == 8);

  // Aligned: three page-aligned buffers -> the O_DIRECT descriptor under kNone.
  auto a = aligned_buffer(3 * 4096);
  fill(a.get(), 3 * 4096, 'a');
  std::vector<iovec> three{{a.get(), 4096}, {a.get() + 4096, 4096}, {a.get() + 8192, 4096}};
  CHECK(run(q, rw(IoKind::kWrite, 8192, three)) == 0);
  CHECK(file.read(8192, 3 * 4096) == std::vector<char>(a.get(), a.get() + 3 * 4096));

  // Read back with a different split: 512 + 8 KiB - 512 + 4 KiB.
  auto b = aligned_buffer(3 * 4096);
  std::memset(b.get(), 0, 3 * 4096);
  std::vector<iovec> split{{b.get(), 512}, {b.get() + 512, 8192 - 512}, {b.get() + 8192, 4096}};
  CHECK(run(q, rw(IoKind::kRead, 8192, split)) == 0);
  CHECK(std::memcmp(a.get(), b.get(), 3 * 4096) == 0);

  // Unaligned bases and lengths (a guest's 512-byte sector split across odd buffers): must be
  // routed to the buffered descriptor, else O_DIRECT answers EINVAL.
  auto c = aligned_buffer(8192);
  fill(c.get(), 8192, 'u');
  std::vector<iovec> odd{{c.get() + 1, 100}, {c.get() + 301, 412}, {c.get() + 4097, 1024}};
  CHECK(run(q, rw(IoKind::kWrite, 512 * 3, odd)) == 0);
  auto d = aligned_buffer(8192);
  std::vector<iovec> odd_back{{d.get() + 3, 1536}};
  CHECK(run(q, rw(IoKind::kRead, 512 * 3, odd_back)) == 0);
  std::vector<char> expect;
  for (const auto& v : odd) {
    expect.insert(expect.end(), static_cast<char*>(v.iov_base),
                  static_cast<char*>(v.iov_base) + v.iov_len);
  }
  CHECK(std::vector<char>(d.get() + 3, d.get() + 3 + 1536) == expect);
  CHECK(file.read(512 * 3, 1536) == expect);

  // An offset that is not sector-aligned works as well (buffered path).
  std::vector<iovec> tiny{{c.get(), 37}};
  CHECK(run(q, rw(IoKind::kWrite, 100001, tiny)) == 0);
  CHECK(file.read(100001, 37) == std::vector<char>(c.get(), c.get() + 37));

  // The last sector of the disk.
  std::vector<iovec> last{{a.get(), 512}};
  CHECK(run(q, rw(IoKind::kWrite, (1 << 20) - 512, last)) == 0);
  CHECK(file.read((1 << 20) - 512, 512) == std::vector<char>(a.get(), a.get() + 512));

  CHECK(run(q, range(IoKind::kFlush, 0, 0)) == 0);
  CHECK(q.in_flight() == 0);
}

TEST_CASE("file backend discard and write-zeroes read back as zeroes", "[blockdev][file_backend]") {
  const auto cache = GENERATE(CachePolicy::kNone, CachePolicy::kWriteback);
  TempFile file("/var/tmp", 1 << 20);
  auto backend = open_file(file.path, cache);
  const auto& info = backend->info();
  CHECK(info.discard_granularity == 4096);
  CHECK(info.discard_zeroes);
  CHECK(info.write_zeroes);
  auto queue = backend->open_queue(4);
  REQUIRE(queue.has_value());
  auto& q = **queue;

  auto a = aligned_buffer(64 * 1024);
  fill(a.get(), 64 * 1024, 'd');
  std::vector<iovec> one{{a.get(), 64 * 1024}};
  CHECK(run(q, rw(IoKind::kWrite, 0, one)) == 0);

  CHECK(run(q, range(IoKind::kDiscard, 4096, 8192)) == 0);
  IoRequest zero = range(IoKind::kWriteZeroes, 32768, 4096 + 512);
  CHECK(run(q, zero) == 0);
  zero.offset = 49152;
  zero.length = 1024;
  zero.may_unmap = true;
  CHECK(run(q, zero) == 0);

  auto back = aligned_buffer(64 * 1024);
  std::vector<iovec> all{{back.get(), 64 * 1024}};
  CHECK(run(q, rw(IoKind::kRead, 0, all)) == 0);
  const char* p = back.get();
  CHECK(std::memcmp(p, a.get(), 4096) == 0);
  CHECK(all_zero(p + 4096, 8192));
  CHECK(std::memcmp(p + 12288, a.get() + 12288, 32768 - 12288) == 0);
  CHECK(all_zero(p + 32768, 4096 + 512));
  CHECK(std::memcmp(p + 32768 + 4608, a.get() + 32768 + 4608, 49152 - 32768 - 4608) == 0);
  CHECK(all_zero(p + 49152, 1024));
  CHECK(std::memcmp(p + 50176, a.get() + 50176, 65536 - 50176) == 0);
  // The file keeps its size (FALLOC_FL_KEEP_SIZE).
  CHECK(file.read(0, 1 << 20).size() == (1u << 20));
}

TEST_CASE("file backend on tmpfs works with and without O_DIRECT and zeroes by punching holes",
          "[blockdev][file_backend]") {
  if (::access("/dev/shm", W_OK) != 0) {
    WARN("no writable /dev/shm: tmpfs case not run");
    return;
  }
  TempFile file("/dev/shm", 256 * 1024);
  auto backend = open_file(file.path, CachePolicy::kNone);
  // Linux >= 6.6 gives tmpfs O_DIRECT; older kernels refuse it and the backend falls back.
  INFO("O_DIRECT on tmpfs: " << backend->uses_direct_io());
  CHECK(backend->info().write_zeroes);  // tmpfs: no ZERO_RANGE, punch hole instead
  auto queue = backend->open_queue(4);
  REQUIRE(queue.has_value());
  auto& q = **queue;
  auto a = aligned_buffer(16384);
  fill(a.get(), 16384, 't');
  std::vector<iovec> one{{a.get(), 16384}};
  CHECK(run(q, rw(IoKind::kWrite, 0, one)) == 0);
  CHECK(run(q, range(IoKind::kWriteZeroes, 4096, 4096)) == 0);
  CHECK(run(q, range(IoKind::kFlush, 0, 0)) == 0);
  auto back = file.read(0, 16384);
  CHECK(std::memcmp(back.data(), a.get(), 4096) == 0);
  CHECK(all_zero(back.data() + 4096, 4096));
  CHECK(std::memcmp(back.data() + 8192, a.get() + 8192, 8192) == 0);
}

TEST_CASE("file backend refuses bad requests at submit with EROFS, EINVAL or EAGAIN",
          "[blockdev][file_backend]") {
  TempFile file("/var/tmp", 64 * 1024);
  auto buf = aligned_buffer(8192);
  std::vector<iovec> one{{buf.get(), 4096}};

  SECTION("read-only disk: writes, discards and write-zeroes are EROFS, reads work") {
    auto backend = open_file(file.path, CachePolicy::kNone, /*read_only=*/true);
    CHECK(backend->info().read_only);
    auto queue = backend->open_queue(4);
    REQUIRE(queue.has_value());
    auto& q = **queue;
    for (auto req : {rw(IoKind::kWrite, 0, one), range(IoKind::kDiscard, 0, 4096),
                     range(IoKind::kWriteZeroes, 0, 4096)}) {
      auto r = q.submit(req);
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error().code() == EROFS);
    }
    CHECK(q.in_flight() == 0);
    CHECK(run(q, rw(IoKind::kRead, 0, one)) == 0);
    CHECK(run(q, range(IoKind::kFlush, 0, 0)) == 0);
  }
  SECTION("outside the disk, empty or inconsistent iovecs: EINVAL") {
    auto backend = open_file(file.path, CachePolicy::kWriteback);
    auto queue = backend->open_queue(4);
    REQUIRE(queue.has_value());
    auto& q = **queue;
    IoRequest past = rw(IoKind::kRead, 64 * 1024 - 2048, one);  // crosses the end
    IoRequest beyond = rw(IoKind::kWrite, 1ull << 40, one);
    IoRequest wrap = range(IoKind::kDiscard, 4096, ~0ull);      // offset + length overflows
    IoRequest mismatch = rw(IoKind::kWrite, 0, one);
    mismatch.length = 8192;
    IoRequest no_iov = range(IoKind::kRead, 0, 4096);
    IoRequest empty = range(IoKind::kWriteZeroes, 0, 0);
    for (const auto& req : {past, beyond, wrap, mismatch, no_iov, empty}) {
      auto r = q.submit(req);
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error().code() == EINVAL);
      CHECK(r.error().message().find(file.path) != std::string::npos);  // names the disk
    }
    CHECK(q.in_flight() == 0);
    std::vector<Completion> out;
    CHECK(q.reap(out) == 0);
  }
}

TEST_CASE("file backend keeps a full queue in flight, refuses one more, and drains",
          "[blockdev][file_backend]") {
  const auto cache = GENERATE(CachePolicy::kNone, CachePolicy::kWriteback);
  constexpr size_t kDepth = 64;
  TempFile file("/var/tmp", kDepth * 8192);
  auto backend = open_file(file.path, cache);
  auto queue = backend->open_queue(kDepth);
  REQUIRE(queue.has_value());
  auto& q = **queue;

  auto data = aligned_buffer(kDepth * 8192);
  fill(data.get(), kDepth * 8192, 'q');
  std::vector<std::vector<iovec>> iovs(kDepth);
  for (size_t i = 0; i < kDepth; ++i) {
    // Two iovecs per request: 4 KiB + 4 KiB.
    iovs[i] = {{data.get() + i * 8192, 4096}, {data.get() + i * 8192 + 4096, 4096}};
    IoRequest req = rw(IoKind::kWrite, i * 8192, iovs[i]);
    req.cookie = 5000 + i;
    REQUIRE(q.submit(req).has_value());
  }
  CHECK(q.in_flight() <= kDepth);
  IoRequest extra = range(IoKind::kFlush, 0, 0);
  if (q.in_flight() == kDepth) {
    auto r = q.submit(extra);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code() == EAGAIN);
  }
  q.drain();
  CHECK(q.in_flight() == 0);
  pollfd p{q.event_fd(), POLLIN, 0};
  CHECK(::poll(&p, 1, 0) == 1);  // drained completions are announced
  std::vector<Completion> out;
  CHECK(q.reap(out) == kDepth);
  std::set<uint64_t> cookies;
  for (const auto& c : out) {
    CHECK(c.result == 0);
    cookies.insert(c.cookie);
  }
  CHECK(cookies.size() == kDepth);
  CHECK(*cookies.begin() == 5000);
  CHECK(*cookies.rbegin() == 5000 + kDepth - 1);
  CHECK(file.read(0, kDepth * 8192) == std::vector<char>(data.get(), data.get() + kDepth * 8192));

  // Read everything back through the queue with the destructor doing the drain.
  auto back = aligned_buffer(kDepth * 8192);
  {
    auto q2 = backend->open_queue(kDepth);
    REQUIRE(q2.has_value());
    std::vector<std::vector<iovec>> riov(kDepth);
    for (size_t i = 0; i < kDepth; ++i) {
      riov[i] = {{back.get() + i * 8192, 8192}};
      REQUIRE((*q2)->submit(rw(IoKind::kRead, i * 8192, riov[i])).has_value());
    }
  }  // ~FileQueue drains before the ring goes away
  CHECK(std::memcmp(back.get(), data.get(), kDepth * 8192) == 0);
}

TEST_CASE("file backend open refuses sizes that are not a multiple of 512 and missing files",
          "[blockdev][file_backend]") {
  TempFile odd("/var/tmp", 4096 + 100);
  auto r = FileBackend::open(FileLocation{odd.path}, BackendOptions{});
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code() == EINVAL);
  CHECK(r.error().message().find("multiple of 512") != std::string::npos);

  auto missing = FileBackend::open(FileLocation{"/var/tmp/hcnode-no-such-file.img"},
                                   BackendOptions{});
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().code() == ENOENT);
  CHECK(missing.error().message() ==
        "file:/var/tmp/hcnode-no-such-file.img: no such file: No such file or directory");

  // (Read-only: a read-write open of a directory already fails with EISDIR.)
  auto dir = FileBackend::open(FileLocation{"/var/tmp"}, BackendOptions{true, CachePolicy::kNone});
  REQUIRE_FALSE(dir.has_value());
  CHECK(dir.error().code() == EINVAL);
}

TEST_CASE("file backend opens a container of any size: reads across its end return its bytes "
          "then zeroes and aligned writes past it extend the file",
          "[blockdev][file_backend]") {
  // A fresh `qemu-img create` overlay's size: three clusters and the 8 bytes of its L1 table.
  constexpr uint64_t kOdd = 3 * 65536 + 8;
  const auto cache = GENERATE(CachePolicy::kNone, CachePolicy::kWriteback);
  INFO("cache=" << to_string(cache));
  TempFile file("/var/tmp", kOdd);
  std::vector<char> bytes(kOdd);
  fill(bytes.data(), kOdd, 'q');
  {
    int fd = ::open(file.path.c_str(), O_WRONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    REQUIRE(::pwrite(fd, bytes.data(), kOdd, 0) == static_cast<ssize_t>(kOdd));
    ::close(fd);
  }
  // As a disk it is refused, growable or not: only a container may end inside a sector.
  BackendOptions disk;
  disk.cache = cache;
  disk.growable = true;
  auto refused = FileBackend::open(FileLocation{file.path}, disk);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().code() == EINVAL);

  BackendOptions container;
  container.cache = cache;
  container.growable = true;
  container.container = true;
  auto opened = FileBackend::open(FileLocation{file.path}, container);
  INFO((opened ? std::string("ok") : opened.error().message()));
  REQUIRE(opened.has_value());
  auto backend = *opened;
  CHECK(backend->info().size == kOdd);
  CHECK(backend->info().container);
  CHECK(backend->uses_direct_io() == (cache == CachePolicy::kNone));
  auto queue = backend->open_queue(4);
  REQUIRE(queue.has_value());
  auto& q = **queue;
  auto buf = aligned_buffer(65536);

  // The last, partial sector, aligned (O_DIRECT under kNone): 8 bytes of the file, then zeroes
  // where the buffer held something else.
  std::memset(buf.get(), 0x5a, 65536);
  CHECK(run(q, rw(IoKind::kRead, kOdd - 8, {{buf.get(), 512}})) == 0);
  CHECK(std::memcmp(buf.get(), bytes.data() + kOdd - 8, 8) == 0);
  CHECK(all_zero(buf.get() + 8, 504));
  // Across the end in two iovecs: the end falls inside the second.
  std::memset(buf.get(), 0x5a, 65536);
  CHECK(run(q, rw(IoKind::kRead, kOdd - 8 - 4096, {{buf.get(), 4096}, {buf.get() + 4096, 4096}})) == 0);
  CHECK(std::memcmp(buf.get(), bytes.data() + kOdd - 8 - 4096, 4096 + 8) == 0);
  CHECK(all_zero(buf.get() + 4096 + 8, 4096 - 8));
  // Wholly past the end.
  std::memset(buf.get(), 0x5a, 65536);
  CHECK(run(q, rw(IoKind::kRead, 5 * 65536, {{buf.get(), 65536}})) == 0);
  CHECK(all_zero(buf.get(), 65536));

  // A cluster-aligned write past the unaligned end (what the qcow2 layer appends), and a
  // sector-aligned one across it (the L1 table's sector): both extend the file.
  fill(buf.get(), 65536, 'w');
  CHECK(run(q, rw(IoKind::kWrite, 4 * 65536, {{buf.get(), 65536}})) == 0);
  CHECK(file.read(4 * 65536, 65536) == std::vector<char>(buf.get(), buf.get() + 65536));
  CHECK(run(q, rw(IoKind::kWrite, kOdd - 8, {{buf.get(), 512}})) == 0);
  CHECK(file.read(kOdd - 8, 512) == std::vector<char>(buf.get(), buf.get() + 512));
  struct stat st {};
  REQUIRE(::stat(file.path.c_str(), &st) == 0);
  CHECK(static_cast<uint64_t>(st.st_size) == 5 * 65536);
  // The gap between the old end and the appended cluster reads as zeroes.
  CHECK(run(q, rw(IoKind::kRead, kOdd - 8 + 512, {{buf.get(), 4096}})) == 0);
  CHECK(all_zero(buf.get(), 4096));
  CHECK(file.read(0, kOdd - 8) == std::vector<char>(bytes.begin(), bytes.end() - 8));

  // Read-only (a backing image): reads past the end are allowed too, writes are not.
  BackendOptions ro = container;
  ro.read_only = true;
  ro.growable = false;
  auto reader = FileBackend::open(FileLocation{file.path}, ro);
  REQUIRE(reader.has_value());
  auto rq = (*reader)->open_queue(2);
  REQUIRE(rq.has_value());
  std::memset(buf.get(), 0x5a, 65536);
  CHECK(run(**rq, rw(IoKind::kRead, 5 * 65536 - 512, {{buf.get(), 4096}})) == 0);
  CHECK(std::memcmp(buf.get(), file.read(5 * 65536 - 512, 512).data(), 512) == 0);
  CHECK(all_zero(buf.get() + 512, 4096 - 512));
  std::vector<iovec> one{{buf.get(), 512}};
  auto refused_write = (*rq)->submit(rw(IoKind::kWrite, 0, one));
  REQUIRE_FALSE(refused_write.has_value());
  CHECK(refused_write.error().code() == EROFS);
}

TEST_CASE("open_backend dispatches file URIs and cache policies parse",
          "[blockdev][file_backend]") {
  TempFile file("/var/tmp", 8192);
  StorageSessions sessions;
  auto uri = parse_disk_uri("file:" + file.path);
  REQUIRE(uri.has_value());
  auto backend = open_backend(*uri, BackendOptions{false, CachePolicy::kNone}, sessions);
  REQUIRE(backend.has_value());
  CHECK((*backend)->info().kind == "file");
  CHECK((*backend)->uri() == uri->to_string());

  CHECK(parse_cache_policy("none").value() == CachePolicy::kNone);
  CHECK(parse_cache_policy("writeback").value() == CachePolicy::kWriteback);
  CHECK_FALSE(parse_cache_policy("writethrough").has_value());
  CHECK(std::string(to_string(CachePolicy::kNone)) == "none");
  CHECK(std::string(to_string(IoKind::kWriteZeroes)) == "write-zeroes");
}
