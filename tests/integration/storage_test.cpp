// The storage service (storage/image_service.hpp) against the real dev cluster, and against a
// local directory pool (no cluster needed): golden image -> clone -> clone of a clone, parent
// data visible through the clones, writes that diverge, flatten, remove ordering, snapshots,
// import/export, and the validation errors. Data is written and read through blockdev's
// backends (open_backend + SyncDisk), the same path a VMM uses — qcow2 overlays through the
// qcow2 format layer.
//
// Every image name is unique to the run (pid + random); a Cleanup guard removes what a test
// created even when it fails half-way.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "blockdev/open_backend.hpp"
#include "blockdev/qcow2/qcow2_format.hpp"
#include "blockdev/sync_disk.hpp"
#include "blockdev/rbd/rados_handles.hpp"
#include "storage/image_service.hpp"
#include "storage/rbd/clone_intents.hpp"
#include "tests/integration/requirements.hpp"

using namespace hcnode;
using namespace hcnode::storage;
using blockdev::ImageFormat;
using blockdev::SyncDisk;
using hcnode::testing::unique_name;

namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kImageSize = 64 * kMiB;
// Two extents: one at the start, one crossing an RBD object boundary (4 MiB objects) far from it.
constexpr uint64_t kLowOffset = 0;
constexpr uint64_t kHighOffset = 40 * kMiB - 64 * 1024;
constexpr size_t kExtent = 256 * 1024;

std::vector<uint8_t> pattern(size_t size, unsigned seed) {
  std::vector<uint8_t> data(size);
  for (size_t i = 0; i < size; ++i) {
    data[i] = static_cast<uint8_t>(seed * 131 + i * 7 + i / 4096 + 1);
  }
  return data;
}

// One StorageSessions per test process, never destroyed: glfs_fini costs ~10 s and the process
// ends right after the test (reachable through the static, so LeakSanitizer does not count it).
std::shared_ptr<blockdev::StorageSessions> shared_sessions(bool need_ceph) {
  static std::shared_ptr<blockdev::StorageSessions>* sessions = nullptr;
  if (sessions == nullptr) {
    blockdev::SessionsConfig sc;
    if (need_ceph) sc.ceph = hcnode::testing::require_ceph();
    sessions = new std::shared_ptr<blockdev::StorageSessions>(
        std::make_shared<blockdev::StorageSessions>(sc));
  }
  return *sessions;
}

struct Pools {
  bool rbd = false;
  bool gluster = false;
  std::string local_dir;  // empty: no local pool

  static Pools ceph() { return Pools{true, false, ""}; }
  static Pools glusterfs() { return Pools{false, true, ""}; }
  static Pools local(std::string dir) { return Pools{false, false, std::move(dir)}; }
};

// A service over the dev cluster's pools ("rbd", "gluster" with dir /images) and, when asked, a
// local directory pool "local".
std::unique_ptr<ImageService> make_service(const Pools& want) {
  StorageConfig config;
  config.source = "storage_test";
  if (want.rbd) {
    hcnode::testing::require_ceph();
    const char* pool = std::getenv("HCNODE_RBD_POOL");
    config.pools.push_back(PoolConfig{"rbd", RbdPool{pool != nullptr ? pool : "rbd", ""}});
  }
  if (want.gluster) {
    auto server = hcnode::testing::require_gluster();
    config.pools.push_back(
        PoolConfig{"gluster", GlusterPool{server.host, server.port, server.volume, "/images"}});
  }
  if (!want.local_dir.empty()) {
    config.pools.push_back(PoolConfig{"local", DirPool{want.local_dir}});
  }
  auto service = ImageService::create(config, shared_sessions(want.rbd));
  REQUIRE(service.has_value());
  return std::move(*service);
}

// Removes the images a test created, last first (clones before their parents), flattening
// whatever still depends on them. Runs on success and on a failed REQUIRE alike.
class Cleanup {
 public:
  explicit Cleanup(ImageService& service) : service_(service) {}
  ~Cleanup() {
    for (auto it = refs_.rbegin(); it != refs_.rend(); ++it) {
      (void)service_.unmark_golden(*it);
      RemoveOptions options;
      options.flatten_children = true;
      auto r = service_.remove(*it, options);
      if (!r && r.error().code() != ENOENT) {
        std::fprintf(stderr, "cleanup %s: %s\n", it->to_string().c_str(),
                     r.error().message().c_str());
      }
    }
  }
  ImageRef add(const std::string& pool, const std::string& prefix) {
    refs_.push_back(ImageRef{pool, unique_name(prefix), std::nullopt});
    return refs_.back();
  }

 private:
  ImageService& service_;
  std::vector<ImageRef> refs_;
};

SyncDisk open_disk(ImageService& service, const ImageRef& ref, bool read_only) {
  auto where = service.locate(ref);
  REQUIRE(where.has_value());
  blockdev::BackendOptions options;
  options.read_only = read_only;
  options.format = where->format;
  auto backend = blockdev::open_backend(where->uri, options, service.sessions());
  INFO(where->uri.to_string());
  REQUIRE(backend.has_value());
  auto disk = SyncDisk::open(std::move(*backend));
  REQUIRE(disk.has_value());
  return std::move(*disk);
}

void write_at(ImageService& service, const ImageRef& ref, uint64_t offset,
              const std::vector<uint8_t>& data) {
  auto disk = open_disk(service, ref, false);
  REQUIRE(disk.write(offset, data).has_value());
  REQUIRE(disk.flush().has_value());
}

std::vector<uint8_t> read_at(ImageService& service, const ImageRef& ref, uint64_t offset,
                             size_t length) {
  auto disk = open_disk(service, ref, true);
  std::vector<uint8_t> data(length);
  auto r = disk.read(offset, data);
  INFO(ref.to_string() << " @" << offset << ": " << (r ? "" : r.error().message()));
  REQUIRE(r.has_value());
  return data;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

template <typename T>
int error_code(const Result<T>& r) {
  return r ? 0 : r.error().code();
}

template <typename T>
std::string error_text(const Result<T>& r) {
  return r ? "" : r.error().message();
}

// The clone chain every pool kind must support:
//   golden (pattern A low + high) -> c1 (writes B low) -> c1 marked golden -> c2
// then: data through each level, golden untouched, remove ordering, flatten.
void clone_chain(ImageService& service, const std::string& pool, ImageFormat clone_format) {
  Cleanup cleanup(service);
  const ImageRef golden = cleanup.add(pool, "st-golden");
  const ImageRef c1 = cleanup.add(pool, "st-clone");
  const ImageRef c2 = cleanup.add(pool, "st-clone2");
  const auto a_low = pattern(kExtent, 1);
  const auto a_high = pattern(kExtent, 2);
  const auto b_low = pattern(kExtent, 3);

  REQUIRE(service.create_image(golden, CreateOptions{kImageSize}).has_value());
  write_at(service, golden, kLowOffset, a_low);
  write_at(service, golden, kHighOffset, a_high);

  // Not golden yet: cloning needs the golden mark (or, on RBD, a named snapshot).
  auto premature = service.clone(golden, c1);
  CHECK(error_code(premature) == EINVAL);

  REQUIRE(service.mark_golden(golden).has_value());
  REQUIRE(service.mark_golden(golden).has_value());  // idempotent
  auto ginfo = service.info(golden);
  REQUIRE(ginfo.has_value());
  CHECK(ginfo->golden);
  CHECK(ginfo->size == kImageSize);

  auto c1info = service.clone(golden, c1);
  INFO((c1info ? "" : c1info.error().message()));
  REQUIRE(c1info.has_value());
  CHECK(c1info->format == clone_format);
  CHECK(c1info->size == kImageSize);
  REQUIRE(c1info->parent.has_value());
  CHECK(c1info->parent->starts_with(golden.to_string()));
  CHECK(contains(service.info(golden)->children, c1.to_string()));
  CHECK(error_code(service.clone(golden, c1)) == EEXIST);
  // clone() returns what it knows without reading the clone back: the same as info() says. A
  // fresh clone is not golden (RBD: the mark librbd copies from the parent does not count).
  CHECK_FALSE(c1info->golden);
  {
    auto full = service.info(c1);
    REQUIRE(full.has_value());
    CHECK_FALSE(full->golden);
    CHECK(full->uri == c1info->uri);
    CHECK(full->size == c1info->size);
    CHECK(full->format == c1info->format);
    CHECK(full->parent == c1info->parent);
    CHECK(full->pool_kind == c1info->pool_kind);
    CHECK(full->backing_chain.size() == c1info->backing_chain.size());
    CHECK(full->children.empty());
  }

  // Parent data through the clone; unwritten parts read as zeroes.
  CHECK(read_at(service, c1, kLowOffset, kExtent) == a_low);
  CHECK(read_at(service, c1, kHighOffset, kExtent) == a_high);
  CHECK(read_at(service, c1, 20 * kMiB, 4096) == std::vector<uint8_t>(4096, 0));

  // Writes to the clone diverge; the golden image does not change.
  write_at(service, c1, kLowOffset, b_low);
  CHECK(read_at(service, c1, kLowOffset, kExtent) == b_low);
  CHECK(read_at(service, golden, kLowOffset, kExtent) == a_low);
  CHECK(read_at(service, c1, kHighOffset, kExtent) == a_high);

  // Clone of a clone: the clone becomes golden in turn.
  REQUIRE(service.mark_golden(c1).has_value());
  auto c2info = service.clone(c1, c2);
  INFO((c2info ? "" : c2info.error().message()));
  REQUIRE(c2info.has_value());
  REQUIRE(c2info->parent.has_value());
  CHECK(c2info->parent->starts_with(c1.to_string()));
  CHECK(read_at(service, c2, kLowOffset, kExtent) == b_low);
  CHECK(read_at(service, c2, kHighOffset, kExtent) == a_high);
  if (clone_format == ImageFormat::kQcow2) {
    // Two layers below c2: c1 (qcow2) and the golden raw image.
    REQUIRE(c2info->backing_chain.size() == 2);
    CHECK(c2info->backing_chain[0].format == "qcow2");
    CHECK(c2info->backing_chain[1].format == "raw");
    CHECK(c2info->backing_chain[1].image == golden.to_string());
  }

  // Listing shows the three with their parents; no temporaries.
  auto listed = service.list(pool);
  REQUIRE(listed.has_value());
  int seen = 0;
  for (const auto& s : *listed) {
    CHECK(s.name.find(".importing-") == std::string::npos);
    CHECK(s.name.find(".creating-") == std::string::npos);
    if (s.name == golden.name) {
      ++seen;
      CHECK(s.golden);
      CHECK_FALSE(s.parent.has_value());
    } else if (s.name == c1.name || s.name == c2.name) {
      ++seen;
      CHECK(s.parent.has_value());
      CHECK(s.format == clone_format);
    }
  }
  CHECK(seen == 3);

  // Remove ordering: the golden image is refused while c1 depends on it, and says why.
  auto refused = service.remove(golden);
  CHECK(error_code(refused) == ENOTEMPTY);
  CHECK(error_text(refused).find(c1.to_string()) != std::string::npos);
  CHECK(service.info(golden).has_value());

  // Flatten c2: no parent afterwards, same data.
  uint64_t last_done = 0;
  uint64_t calls = 0;
  auto flattened = service.flatten(c2, [&](uint64_t done, uint64_t) {
    last_done = done;
    ++calls;
    return true;
  });
  INFO(error_text(flattened));
  REQUIRE(flattened.has_value());
  CHECK(calls > 0);
  auto flat = service.info(c2);
  REQUIRE(flat.has_value());
  CHECK_FALSE(flat->parent.has_value());
  CHECK(flat->backing_chain.empty());
  CHECK(read_at(service, c2, kLowOffset, kExtent) == b_low);
  CHECK(read_at(service, c2, kHighOffset, kExtent) == a_high);
  CHECK(read_at(service, c2, 20 * kMiB, 4096) == std::vector<uint8_t>(4096, 0));
  CHECK_FALSE(contains(service.info(c1)->children, c2.to_string()));

  // With flatten_children the golden image goes, after c1 was flattened; c1 keeps its data.
  RemoveOptions force;
  force.flatten_children = true;
  auto removed = service.remove(golden, force);
  INFO(error_text(removed));
  REQUIRE(removed.has_value());
  CHECK(error_code(service.info(golden)) == ENOENT);
  auto c1flat = service.info(c1);
  REQUIRE(c1flat.has_value());
  CHECK_FALSE(c1flat->parent.has_value());
  CHECK(read_at(service, c1, kLowOffset, kExtent) == b_low);
  CHECK(read_at(service, c1, kHighOffset, kExtent) == a_high);
}

// Import (sparse file and a pipe) and export round trips through one pool.
void import_export(ImageService& service, const std::string& pool, const std::string& scratch) {
  Cleanup cleanup(service);
  const ImageRef from_file = cleanup.add(pool, "st-import");
  const ImageRef from_pipe = cleanup.add(pool, "st-stdin");

  // A sparse 48 MiB raw file with data in two places.
  const std::string src = scratch + "/source.raw";
  {
    int fd = ::open(src.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    auto a = pattern(kExtent, 7);
    auto b = pattern(kExtent, 8);
    REQUIRE(::pwrite(fd, a.data(), a.size(), 0) == static_cast<ssize_t>(a.size()));
    REQUIRE(::pwrite(fd, b.data(), b.size(), 30 * kMiB) == static_cast<ssize_t>(b.size()));
    REQUIRE(::ftruncate(fd, 48 * kMiB) == 0);
    ::close(fd);
  }
  uint64_t progress_total = 0;
  ImportOptions options;
  options.progress = [&](uint64_t, uint64_t total) {
    progress_total = total;
    return true;
  };
  auto imported = service.import_file(src, from_file, options);
  INFO((imported ? "" : imported.error().message()));
  REQUIRE(imported.has_value());
  CHECK(imported->size == 48 * kMiB);
  CHECK(imported->format == ImageFormat::kRaw);
  CHECK(progress_total == 48 * kMiB);
  // Sparse: zero chunks were not written (RBD counts whole 4 MiB objects).
  CHECK(imported->used <= 16 * kMiB);
  CHECK(read_at(service, from_file, 30 * kMiB, kExtent) == pattern(kExtent, 8));
  CHECK(error_code(service.import_file(src, from_file, {})) == EEXIST);

  // Export and compare byte for byte.
  const std::string out = scratch + "/export.raw";
  auto exported = service.export_file(from_file, out, {});
  INFO(error_text(exported));
  REQUIRE(exported.has_value());
  CHECK(error_code(service.export_file(from_file, out, {})) == EEXIST);
  REQUIRE(std::filesystem::file_size(out) == 48 * kMiB);
  {
    int a = ::open(src.c_str(), O_RDONLY);
    int b = ::open(out.c_str(), O_RDONLY);
    std::vector<uint8_t> x(kMiB), y(kMiB);
    bool same = true;
    for (uint64_t off = 0; off < 48 * kMiB && same; off += kMiB) {
      REQUIRE(::pread(a, x.data(), kMiB, static_cast<off_t>(off)) == static_cast<ssize_t>(kMiB));
      REQUIRE(::pread(b, y.data(), kMiB, static_cast<off_t>(off)) == static_cast<ssize_t>(kMiB));
      same = x == y;
    }
    ::close(a);
    ::close(b);
    CHECK(same);
  }

  // From a pipe (stdin-like), size unknown up front: 3 MiB + 512 bytes.
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const auto streamed = pattern(3 * kMiB + 512, 9);
  std::thread writer([&] {
    size_t off = 0;
    while (off < streamed.size()) {
      ssize_t w = ::write(fds[1], streamed.data() + off, std::min<size_t>(100000, streamed.size() - off));
      if (w <= 0) break;
      off += static_cast<size_t>(w);
    }
    ::close(fds[1]);
  });
  auto piped = service.import_stream(fds[0], from_pipe, {});
  writer.join();
  ::close(fds[0]);
  INFO((piped ? "" : piped.error().message()));
  REQUIRE(piped.has_value());
  CHECK(piped->size == streamed.size());
  CHECK(read_at(service, from_pipe, 0, streamed.size()) == streamed);

  // A stream whose length is not a multiple of 512 is refused and leaves nothing behind.
  const ImageRef odd = cleanup.add(pool, "st-odd");
  REQUIRE(::pipe(fds) == 0);
  std::thread odd_writer([&] {
    std::vector<uint8_t> junk(1000, 0x5a);
    (void)::write(fds[1], junk.data(), junk.size());
    ::close(fds[1]);
  });
  auto odd_result = service.import_stream(fds[0], odd, {});
  odd_writer.join();
  ::close(fds[0]);
  CHECK(error_code(odd_result) == EINVAL);
  CHECK(error_code(service.info(odd)) == ENOENT);
  ListOptions all;
  all.include_incomplete = true;
  auto everything = service.list(pool, all);
  REQUIRE(everything.has_value());
  for (const auto& s : *everything) {
    CHECK(s.name.find(odd.name) == std::string::npos);
  }

  // Cancelling through the progress callback keeps the old state (no image).
  const ImageRef cancelled = cleanup.add(pool, "st-cancel");
  ImportOptions stop;
  stop.progress = [](uint64_t done, uint64_t) { return done == 0; };
  CHECK(error_code(service.import_file(src, cancelled, stop)) == ECANCELED);
  CHECK(error_code(service.info(cancelled)) == ENOENT);
}

// Names, sizes and pools are checked before anything is touched.
void validation(ImageService& service, const std::string& pool) {
  Cleanup cleanup(service);
  const ImageRef img = cleanup.add(pool, "st-valid");
  CHECK(error_code(service.create_image(ImageRef{pool, ".hidden", {}}, {kMiB})) == EINVAL);
  CHECK(error_code(service.create_image(ImageRef{pool, "a b", {}}, {kMiB})) == EINVAL);
  CHECK(error_code(service.create_image(ImageRef{pool, std::string(97, 'x'), {}}, {kMiB})) ==
        EINVAL);
  CHECK(error_code(service.create_image(img, {1000})) == EINVAL);
  CHECK(error_code(service.create_image(img, {0})) == EINVAL);
  auto too_big = service.create_image(img, {uint64_t{1} << 50});
  CHECK(error_code(too_big) == ENOSPC);
  if (!too_big) CHECK(too_big.error().message().find("free space") != std::string::npos);
  auto unknown = service.create_image(ImageRef{"nopool", "x", {}}, {kMiB});
  CHECK(error_code(unknown) == ENODEV);
  if (!unknown) CHECK(unknown.error().message().find(pool) != std::string::npos);

  REQUIRE(service.create_image(img, {4 * kMiB}).has_value());
  CHECK(error_code(service.create_image(img, {4 * kMiB})) == EEXIST);
  CHECK(error_code(service.info(ImageRef{pool, "st-missing-" + img.name, {}})) == ENOENT);

  // Resize: grow, refuse a shrink unless allowed, refuse sizes that are not sectors.
  CHECK(service.resize(img, 8 * kMiB, {}).has_value());
  CHECK(service.info(img)->size == 8 * kMiB);
  CHECK(error_code(service.resize(img, 2 * kMiB, {})) == EINVAL);
  CHECK(error_code(service.resize(img, 8 * kMiB + 1, {})) == EINVAL);
  ResizeOptions shrink;
  shrink.allow_shrink = true;
  CHECK(service.resize(img, 2 * kMiB, shrink).has_value());
  CHECK(service.info(img)->size == 2 * kMiB);

  // du reports the image and pool totals.
  auto du = service.du(pool, img.name);
  REQUIRE(du.has_value());
  REQUIRE(du->images.size() == 1);
  CHECK(du->images[0].provisioned == 2 * kMiB);
  CHECK(du->total_provisioned == 2 * kMiB);
  CHECK(du->space.has_value());

  // Two clones to one name at the same instant (two threads, as two agents would): one wins,
  // the other is told the name is taken, and the winner is a whole clone of the golden image.
  {
    const ImageRef golden = cleanup.add(pool, "st-race-golden");
    const ImageRef target = cleanup.add(pool, "st-race");
    REQUIRE(service.create_image(golden, {4 * kMiB}).has_value());
    REQUIRE(service.mark_golden(golden).has_value());
    for (int round = 0; round < 4; ++round) {
      std::atomic<bool> go{false};
      std::optional<Result<ImageInfo>> a, b;
      std::thread ta([&] {
        while (!go) std::this_thread::yield();
        a = service.clone(golden, target);
      });
      std::thread tb([&] {
        while (!go) std::this_thread::yield();
        b = service.clone(golden, target);
      });
      go = true;
      ta.join();
      tb.join();
      INFO("round " << round << ": " << error_text(*a) << " | " << error_text(*b));
      CHECK(a->has_value() != b->has_value());
      CHECK(error_code(*a) + error_code(*b) == EEXIST);
      auto info = service.info(target);
      REQUIRE(info.has_value());
      REQUIRE(info->parent.has_value());
      CHECK(info->parent->find(golden.name) != std::string::npos);
      CHECK(info->size == 4 * kMiB);
      REQUIRE(service.remove(target).has_value());
    }
  }
}

}  // namespace

TEST_CASE("storage rbd: golden -> clone -> clone of clone, data, divergence, flatten, remove order",
          "[storage][ceph][rbd]") {
  auto service = make_service(Pools::ceph());
  clone_chain(*service, "rbd", ImageFormat::kRaw);
}

TEST_CASE("storage rbd: images get the standard features, golden = metadata + snapshot",
          "[storage][ceph][rbd]") {
  auto service = make_service(Pools::ceph());
  Cleanup cleanup(*service);
  const ImageRef img = cleanup.add("rbd", "st-feat");
  REQUIRE(service->create_image(img, {8 * kMiB}).has_value());
  auto info = service->info(img);
  REQUIRE(info.has_value());
  for (const char* f : {"layering", "exclusive-lock", "object-map", "fast-diff", "deep-flatten"}) {
    CHECK(contains(info->features, f));
  }
  CHECK(info->uri == "rbd:" + std::string(std::getenv("HCNODE_RBD_POOL") ? std::getenv("HCNODE_RBD_POOL") : "rbd") + "/" + img.name);
  REQUIRE(service->mark_golden(img).has_value());
  auto snaps = service->snapshot_list(img);
  REQUIRE(snaps.has_value());
  REQUIRE(snaps->size() == 1);
  CHECK((*snaps)[0].name == "golden");
  // The golden snapshot cannot be removed while the image is golden.
  CHECK(error_code(service->snapshot_remove(img, "golden")) == EBUSY);
  // Unmarking drops the snapshot when no clone uses it.
  REQUIRE(service->unmark_golden(img).has_value());
  CHECK_FALSE(service->info(img)->golden);
  CHECK(service->snapshot_list(img)->empty());

  // An image a VM writes to (librbd took its exclusive lock) is neither removed nor rolled back.
  REQUIRE(service->snapshot_create(img, "before").has_value());
  {
    auto disk = open_disk(*service, img, false);
    REQUIRE(disk.write(0, pattern(4096, 5)).has_value());
    auto busy = service->remove(img);
    CHECK(error_code(busy) == EBUSY);
    CHECK(error_text(busy).find("in use") != std::string::npos);
    CHECK(error_code(service->snapshot_rollback(img, "before")) == EBUSY);
  }
  CHECK(service->snapshot_list(img)->size() == 1);  // the refused remove kept the snapshot
}

TEST_CASE("storage rbd: a fresh clone is not golden (the copied mark does not count), resizes",
          "[storage][ceph][rbd]") {
  auto service = make_service(Pools::ceph());
  Cleanup cleanup(*service);
  const ImageRef golden = cleanup.add("rbd", "st-gmark");
  const ImageRef clone = cleanup.add("rbd", "st-gclone");
  const ImageRef clone2 = cleanup.add("rbd", "st-gclone2");
  const ImageRef never = cleanup.add("rbd", "st-gnever");
  REQUIRE(service->create_image(golden, {16 * kMiB}).has_value());
  REQUIRE(service->mark_golden(golden).has_value());

  auto c = service->clone(golden, clone);
  INFO((c ? "" : c.error().message()));
  REQUIRE(c.has_value());
  CHECK_FALSE(c->golden);
  CHECK(c->size == 16 * kMiB);
  CHECK(c->parent == golden.to_string() + "@golden");
  CHECK(contains(c->features, "layering"));
  auto info = service->info(clone);
  REQUIRE(info.has_value());
  CHECK_FALSE(info->golden);
  CHECK(info->features == c->features);
  CHECK(service->info(golden)->golden);
  auto listed = service->list("rbd");
  REQUIRE(listed.has_value());
  for (const auto& s : *listed) {
    if (s.name == clone.name) CHECK_FALSE(s.golden);
    if (s.name == golden.name) CHECK(s.golden);
  }

  // The golden parent refuses a resize; its fresh clone does not.
  CHECK(error_code(service->resize(golden, 32 * kMiB, {})) == EBUSY);
  auto resized = service->resize(clone, 32 * kMiB, {});
  INFO(error_text(resized));
  REQUIRE(resized.has_value());
  CHECK(service->info(clone)->size == 32 * kMiB);
  CHECK_FALSE(service->info(clone)->golden);

  // Marked golden in turn, the clone is golden; ITS clone again is not.
  REQUIRE(service->mark_golden(clone).has_value());
  CHECK(service->info(clone)->golden);
  auto c2 = service->clone(clone, clone2);
  INFO((c2 ? "" : c2.error().message()));
  REQUIRE(c2.has_value());
  CHECK(c2->size == 32 * kMiB);
  CHECK_FALSE(service->info(clone2)->golden);
  CHECK(service->info(clone)->golden);

  // What rbd_clone3 refuses, with clear errors, and nothing left behind.
  auto no_snap = service->clone(ImageRef{"rbd", golden.name, "nope"}, never);
  CHECK(error_code(no_snap) == ENOENT);
  CHECK(error_text(no_snap).find("snapshot") != std::string::npos);
  auto no_image = service->clone(ImageRef{"rbd", golden.name + "-missing", std::nullopt}, never);
  CHECK(error_code(no_image) == ENOENT);
  CHECK(error_text(no_image).find("does not exist") != std::string::npos);
  CHECK(error_code(service->clone(golden, clone)) == EEXIST);
  CHECK(error_code(service->info(never)) == ENOENT);
}

TEST_CASE("storage rbd: snapshot create, list, rollback, remove, clone from a named snapshot",
          "[storage][ceph][rbd]") {
  auto service = make_service(Pools::ceph());
  Cleanup cleanup(*service);
  const ImageRef img = cleanup.add("rbd", "st-snap");
  const ImageRef fromsnap = cleanup.add("rbd", "st-fromsnap");
  REQUIRE(service->create_image(img, {16 * kMiB}).has_value());
  const auto a = pattern(kExtent, 11);
  const auto b = pattern(kExtent, 12);
  write_at(*service, img, 0, a);
  auto s1 = service->snapshot_create(img, "s1");
  REQUIRE(s1.has_value());
  CHECK(s1->name == "s1");
  CHECK(s1->size == 16 * kMiB);
  CHECK(s1->created > 0);
  CHECK(error_code(service->snapshot_create(img, "s1")) == EEXIST);
  CHECK(error_code(service->snapshot_create(img, ".bad")) == EINVAL);
  write_at(*service, img, 0, b);

  // A clone of a named snapshot, without the image being golden.
  auto clone = service->clone(ImageRef{"rbd", img.name, "s1"}, fromsnap);
  INFO((clone ? "" : clone.error().message()));
  REQUIRE(clone.has_value());
  CHECK(read_at(*service, fromsnap, 0, kExtent) == a);
  CHECK(error_code(service->snapshot_remove(img, "s1")) == ENOTEMPTY);
  REQUIRE(service->flatten(fromsnap).has_value());

  auto rolled = service->snapshot_rollback(img, "s1");
  INFO(error_text(rolled));
  REQUIRE(rolled.has_value());
  CHECK(read_at(*service, img, 0, kExtent) == a);
  CHECK(error_code(service->snapshot_rollback(img, "nope")) == ENOENT);
  REQUIRE(service->snapshot_remove(img, "s1").has_value());
  CHECK(service->snapshot_list(img)->empty());
}

TEST_CASE("storage rbd: import (sparse file, pipe) and export round trips",
          "[storage][ceph][rbd]") {
  auto service = make_service(Pools::ceph());
  char dir[] = "/tmp/hcnode-storage-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  import_export(*service, "rbd", dir);
  std::filesystem::remove_all(dir);
}

TEST_CASE("storage rbd: names, sizes, free space, existing names, resize and du",
          "[storage][ceph][rbd]") {
  auto service = make_service(Pools::ceph());
  validation(*service, "rbd");
}

TEST_CASE("storage rbd: a clone killed half-way is incomplete (hidden, refused) until removed or purged",
          "[storage][ceph][rbd]") {
  using namespace std::chrono_literals;
  auto service = make_service(Pools::ceph());
  Cleanup cleanup(*service);
  const char* pool_env = std::getenv("HCNODE_RBD_POOL");
  auto cluster = service->sessions().rados();
  REQUIRE(cluster.has_value());
  auto io = blockdev::RadosIoCtx::create(**cluster, pool_env != nullptr ? pool_env : "rbd");
  REQUIRE(io.has_value());
  CloneIntents records(io->get());
  auto find = [&](const std::vector<ImageSummary>& v, const std::string& name) {
    return std::find_if(v.begin(), v.end(), [&](const ImageSummary& s) { return s.name == name; });
  };

  // What a process killed inside rbd_clone3 leaves right after librbd created the child: the
  // clone's record and an empty image without a parent under the clone's name.
  const ImageRef half = cleanup.add("rbd", "st-half");
  REQUIRE(records.begin(half.name, "rbd/st-golden@golden").has_value());
  REQUIRE(service->create_image(half, {4 * kMiB}).has_value());
  auto visible = service->list("rbd");
  REQUIRE(visible.has_value());
  CHECK(find(*visible, half.name) == visible->end());
  ListOptions all;
  all.include_incomplete = true;
  auto everything = service->list("rbd", all);
  REQUIRE(everything.has_value());
  auto row = find(*everything, half.name);
  REQUIRE(row != everything->end());
  REQUIRE(row->incomplete.has_value());
  CHECK_THAT(*row->incomplete, Catch::Contains("rbd/st-golden@golden"));
  auto info = service->info(half);
  REQUIRE(info.has_value());
  CHECK(info->incomplete.has_value());
  auto where = service->locate(half);
  CHECK(error_code(where) == EUCLEAN);
  CHECK_THAT(error_text(where), Catch::Contains("clone again"));
  auto du = service->du("rbd");
  REQUIRE(du.has_value());
  for (const auto& e : du->images) CHECK(e.name != half.name);
  // Young: maybe a clone still running in another process, so purge with a minimum age keeps it.
  auto kept = service->purge_incomplete("rbd", 1h);
  REQUIRE(kept.has_value());
  CHECK_FALSE(contains(*kept, half.name));
  CHECK(service->info(half).has_value());
  auto purged = service->purge_incomplete("rbd", 0s);
  REQUIRE(purged.has_value());
  CHECK(contains(*purged, half.name));
  CHECK(error_code(service->info(half)) == ENOENT);
  CHECK(records.list(&half.name)->empty());

  // The same, removed by the operator instead (hcctl image rm).
  const ImageRef half2 = cleanup.add("rbd", "st-half");
  REQUIRE(records.begin(half2.name, "rbd/st-golden@golden").has_value());
  REQUIRE(service->create_image(half2, {4 * kMiB}).has_value());
  CHECK(service->info(half2)->incomplete.has_value());
  REQUIRE(service->remove(half2).has_value());
  CHECK(records.list(&half2.name)->empty());

  // A record left by a killed clone that was failing against an existing name (the image is
  // older than the record) does not condemn that image.
  const ImageRef older = cleanup.add("rbd", "st-older");
  REQUIRE(service->create_image(older, {4 * kMiB}).has_value());
  std::this_thread::sleep_for(3s);  // the rule allows 2 s of clock slack
  REQUIRE(records.begin(older.name, "rbd/st-golden@golden").has_value());
  auto older_info = service->info(older);
  REQUIRE(older_info.has_value());
  CHECK_FALSE(older_info->incomplete.has_value());
  CHECK(service->locate(older).has_value());
  auto purged_again = service->purge_incomplete("rbd", 0s);
  REQUIRE(purged_again.has_value());
  CHECK_FALSE(contains(*purged_again, older.name));
  CHECK(service->info(older).has_value());
  CHECK(records.list(&older.name)->empty());  // the stale record went

  // A real clone clears its own record, and a stale record of its name (it created the name,
  // so whatever was recorded before is gone).
  const ImageRef golden = cleanup.add("rbd", "st-golden");
  const ImageRef fresh = cleanup.add("rbd", "st-fresh");
  REQUIRE(service->create_image(golden, {4 * kMiB}).has_value());
  REQUIRE(service->mark_golden(golden).has_value());
  REQUIRE(records.begin(fresh.name, "rbd/st-golden@golden").has_value());
  REQUIRE(service->clone(golden, fresh).has_value());
  auto fresh_info = service->info(fresh);
  REQUIRE(fresh_info.has_value());
  CHECK_FALSE(fresh_info->incomplete.has_value());
  CHECK(records.list(&fresh.name)->empty());
  CHECK(service->locate(fresh).has_value());
}

TEST_CASE("storage gluster: golden raw -> qcow2 clone -> clone of clone, data, flatten, remove order",
          "[storage][gluster]") {
  auto service = make_service(Pools::glusterfs());
  clone_chain(*service, "gluster", ImageFormat::kQcow2);
}

TEST_CASE("storage gluster: golden marks, snapshots refused honestly, qcow2 overlay layout",
          "[storage][gluster]") {
  auto service = make_service(Pools::glusterfs());
  Cleanup cleanup(*service);
  const ImageRef golden = cleanup.add("gluster", "st-gmark");
  const ImageRef clone = cleanup.add("gluster", "st-gclone");
  REQUIRE(service->create_image(golden, {8 * kMiB}).has_value());
  REQUIRE(service->mark_golden(golden).has_value());
  auto info = service->info(golden);
  REQUIRE(info.has_value());
  CHECK(info->golden);
  CHECK(info->read_only);
  CHECK(info->pool_kind == PoolKind::kGluster);
  CHECK(info->uri.ends_with("/images/" + golden.name + ".raw"));

  auto snap = service->snapshot_create(golden, "s1");
  CHECK(error_code(snap) == EOPNOTSUPP);
  if (!snap) {
    CHECK(snap.error().message().find("clone the golden image instead") != std::string::npos);
  }
  CHECK(error_code(service->resize(golden, 16 * kMiB, {})) == EBUSY);

  auto c = service->clone(golden, clone);
  REQUIRE(c.has_value());
  const ImageRef other = cleanup.add("gluster", "st-gsnap");
  CHECK(error_code(service->clone(ImageRef{"gluster", golden.name, "s"}, other)) == EOPNOTSUPP);
  CHECK(error_code(service->resize(clone, 16 * kMiB, {})) == EOPNOTSUPP);
  // The overlay names its backing file relative to the pool directory, as raw.
  auto disk = open_disk(*service, clone, true);
  (void)disk;
  auto where = service->locate(clone);
  REQUIRE(where.has_value());
  CHECK(where->format == ImageFormat::kQcow2);
  REQUIRE(c->backing_chain.size() == 1);
  CHECK(c->backing_chain[0].backing_file == golden.name + ".raw");
  CHECK(c->backing_chain[0].format == "raw");

  REQUIRE(service->unmark_golden(clone).has_value());  // never marked: still fine
  REQUIRE(service->unmark_golden(golden).has_value());
  CHECK_FALSE(service->info(golden)->read_only);
}

TEST_CASE("storage gluster: import (sparse file, pipe) and export round trips", "[storage][gluster]") {
  auto service = make_service(Pools::glusterfs());
  char dir[] = "/tmp/hcnode-storage-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  import_export(*service, "gluster", dir);
  std::filesystem::remove_all(dir);
}

TEST_CASE("storage gluster: names, sizes, free space, existing names, resize and du",
          "[storage][gluster]") {
  auto service = make_service(Pools::glusterfs());
  validation(*service, "gluster");
}

TEST_CASE("storage dir: clone chain, import/export and validation in a local directory pool",
          "[storage][dir]") {
  char dir[] = "/tmp/hcnode-storage-pool-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  const std::string pool_dir = std::string(dir) + "/images";
  {
    auto service = make_service(Pools::local(pool_dir));
    clone_chain(*service, "local", ImageFormat::kQcow2);
    char scratch[] = "/tmp/hcnode-storage-XXXXXX";
    REQUIRE(::mkdtemp(scratch) != nullptr);
    import_export(*service, "local", scratch);
    std::filesystem::remove_all(scratch);
    validation(*service, "local");
  }
  // Leftovers of an interrupted operation: hidden from list(), shown on request, purged.
  {
    auto service = make_service(Pools::local(pool_dir));
    const std::string leftover = pool_dir + "/.st-gone.raw.tmp-abc123";
    int fd = ::open(leftover.c_str(), O_WRONLY | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    ::close(fd);
    CHECK(service->list("local")->empty());
    ListOptions all;
    all.include_incomplete = true;
    auto listed = service->list("local", all);
    REQUIRE(listed.has_value());
    REQUIRE(listed->size() == 1);
    CHECK((*listed)[0].name == ".st-gone.raw.tmp-abc123");
    CHECK(service->purge_incomplete("local", std::chrono::hours(1))->empty());  // too young
    auto purged = service->purge_incomplete("local", std::chrono::seconds(0));
    REQUIRE(purged.has_value());
    CHECK(purged->size() == 1);
  }
  // Everything the tests made was removed again.
  for (const auto& e : std::filesystem::directory_iterator(pool_dir)) {
    FAIL("left behind: " << e.path());
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("storage dir: qemu-img reads the overlays hcnode writes", "[storage][dir][qemu]") {
  if (::access("/usr/bin/qemu-img", X_OK) != 0) {
    hcnode::testing::missing_component("qemu-img is not installed (apt-get install qemu-utils)");
  }
  char dir[] = "/tmp/hcnode-storage-pool-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  auto service = make_service(Pools::local(dir));
  {
    Cleanup cleanup(*service);
    const ImageRef golden = cleanup.add("local", "st-qgold");
    const ImageRef clone = cleanup.add("local", "st-qclone");
    REQUIRE(service->create_image(golden, {kImageSize}).has_value());
    write_at(*service, golden, kHighOffset, pattern(kExtent, 21));
    REQUIRE(service->mark_golden(golden).has_value());
    REQUIRE(service->clone(golden, clone).has_value());
    write_at(*service, clone, kLowOffset, pattern(kExtent, 22));
    const std::string overlay = std::string(dir) + "/" + clone.name + ".qcow2";
    const std::string base = std::string(dir) + "/" + golden.name + ".raw";
    CHECK(std::system(("qemu-img check -q " + overlay).c_str()) == 0);
    // The overlay reads as the golden image with the clone's write on top.
    const std::string expect = std::string(dir) + "/expect.raw";
    REQUIRE(std::system(("cp --sparse=always " + base + " " + expect).c_str()) == 0);
    {
      int fd = ::open(expect.c_str(), O_WRONLY);
      auto p = pattern(kExtent, 22);
      REQUIRE(::pwrite(fd, p.data(), p.size(), kLowOffset) == static_cast<ssize_t>(p.size()));
      ::close(fd);
    }
    CHECK(std::system(("qemu-img compare -q -f qcow2 -F raw " + overlay + " " + expect).c_str()) ==
          0);
    ::unlink(expect.c_str());
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("storage dir: qcow2 files written by qemu-img import as raw, or kept as qcow2",
          "[storage][dir][qemu]") {
  if (::access("/usr/bin/qemu-img", X_OK) != 0 || ::access("/usr/bin/qemu-io", X_OK) != 0) {
    hcnode::testing::missing_component("qemu-img/qemu-io are not installed (apt-get install qemu-utils)");
  }
  char dir[] = "/tmp/hcnode-storage-pool-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  const std::string scratch = dir;
  auto service = make_service(Pools::local(scratch + "/pool"));
  {
    Cleanup cleanup(*service);
    const std::string base = scratch + "/base.qcow2";
    const std::string top = scratch + "/top.qcow2";
    auto sh = [](const std::string& cmd) { return std::system((cmd + " >/dev/null").c_str()); };
    REQUIRE(sh("qemu-img create -q -f qcow2 " + base + " 32M") == 0);
    REQUIRE(sh("qemu-io -f qcow2 -c 'write -P 0x5a 1M 64k' " + base) == 0);
    REQUIRE(sh("qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 " + top) == 0);
    REQUIRE(sh("qemu-io -f qcow2 -c 'write -P 0x33 8M 4k' " + top) == 0);
    const std::vector<uint8_t> five_a(64 * 1024, 0x5a);
    const std::vector<uint8_t> threes(4096, 0x33);

    // Converted to raw: the virtual disk, backing chain included.
    const ImageRef flat = cleanup.add("local", "st-qimport");
    auto raw = service->import_file(top, flat, {});
    INFO((raw ? "" : raw.error().message()));
    REQUIRE(raw.has_value());
    CHECK(raw->format == ImageFormat::kRaw);
    CHECK(raw->size == 32 * kMiB);
    CHECK(read_at(*service, flat, kMiB, five_a.size()) == five_a);
    CHECK(read_at(*service, flat, 8 * kMiB, threes.size()) == threes);

    // Kept as qcow2 (a standalone image only).
    const ImageRef kept = cleanup.add("local", "st-qkept");
    ImportOptions keep;
    keep.keep_qcow2 = true;
    auto refused = service->import_file(top, kept, keep);
    CHECK(error_code(refused) == EINVAL);
    auto q = service->import_file(base, kept, keep);
    INFO((q ? "" : q.error().message()));
    REQUIRE(q.has_value());
    CHECK(q->format == ImageFormat::kQcow2);
    CHECK(q->size == 32 * kMiB);
    CHECK(read_at(*service, kept, kMiB, five_a.size()) == five_a);
    CHECK(sh("qemu-img check -q " + scratch + "/pool/" + kept.name + ".qcow2") == 0);

    // A kept qcow2 golden image gets qcow2 clones (backing format qcow2).
    const ImageRef clone = cleanup.add("local", "st-qkclone");
    REQUIRE(service->mark_golden(kept).has_value());
    auto c = service->clone(kept, clone);
    REQUIRE(c.has_value());
    REQUIRE(c->backing_chain.size() == 1);
    CHECK(c->backing_chain[0].format == "qcow2");
    CHECK(read_at(*service, clone, kMiB, five_a.size()) == five_a);

    // Export of an overlay: the virtual disk as raw.
    const std::string out = scratch + "/clone.raw";
    REQUIRE(service->export_file(clone, out, {}).has_value());
    CHECK(sh("qemu-img compare -q -f raw -F qcow2 " + out + " " + base) == 0);
  }
  std::filesystem::remove_all(scratch);
}

// Not run by default ([.] hides it): clone latency on RBD, the median of N clones of one golden
// image through the service (connection set up before timing). HCNODE_BENCH_CLONES sets N.
TEST_CASE("storage rbd bench: clone latency", "[.][bench][storage][ceph][rbd]") {
  auto service = make_service(Pools::ceph());
  Cleanup cleanup(*service);
  const ImageRef golden = cleanup.add("rbd", "st-bgolden");
  REQUIRE(service->create_image(golden, CreateOptions{kImageSize}).has_value());
  REQUIRE(service->mark_golden(golden).has_value());
  const char* n_env = std::getenv("HCNODE_BENCH_CLONES");
  const int n = n_env != nullptr ? std::atoi(n_env) : 20;
  std::vector<double> ms;
  for (int i = 0; i < n; ++i) {
    const ImageRef clone = cleanup.add("rbd", "st-bclone");
    const auto start = std::chrono::steady_clock::now();
    auto c = service->clone(golden, clone);
    const auto end = std::chrono::steady_clock::now();
    INFO((c ? "" : c.error().message()));
    REQUIRE(c.has_value());
    ms.push_back(std::chrono::duration<double, std::milli>(end - start).count());
  }
  std::sort(ms.begin(), ms.end());
  std::fprintf(stderr, "rbd clone x%d: median %.1f ms, min %.1f ms, max %.1f ms\n", n,
               ms[ms.size() / 2], ms.front(), ms.back());
}
