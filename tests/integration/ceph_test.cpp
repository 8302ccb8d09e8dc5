// The real dev cluster's Ceph, reached as the least-privilege user client.hcnode.
#include <rados/librados.h>
#include <rbd/librbd.h>

#include <cstring>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "blockdev/rbd/rados_handles.hpp"
#include "tests/integration/requirements.hpp"

using namespace hcnode;
using namespace hcnode::blockdev;

namespace {

const char* state_pool() {
  const char* p = std::getenv("HCNODE_STATE_POOL");
  return p != nullptr ? p : "hcnode";
}
const char* rbd_pool() {
  const char* p = std::getenv("HCNODE_RBD_POOL");
  return p != nullptr ? p : "rbd";
}

std::vector<char> pattern(size_t size, char seed) {
  std::vector<char> data(size);
  for (size_t i = 0; i < size; ++i) {
    data[i] = static_cast<char>(seed + static_cast<char>(i * 7 + i / 4096));
  }
  return data;
}

std::vector<char> read_image(rbd_image_t image, uint64_t offset, size_t len) {
  std::vector<char> data(len);
  ssize_t r = rbd_read(image, offset, len, data.data());
  REQUIRE(r == static_cast<ssize_t>(len));
  return data;
}

// Removes an RBD image at scope exit (best effort; the cluster is torn down after the run).
struct ImageCleanup {
  rados_ioctx_t io;
  std::string name;
  ~ImageCleanup() { rbd_remove(io, name.c_str()); }
};

}  // namespace

TEST_CASE("librados: client.hcnode connects, writes and reads an object", "[ceph][rados]") {
  auto config = testing::require_ceph();
  CHECK(config.id == "hcnode");
  auto cluster = RadosCluster::connect(config);
  REQUIRE(cluster.has_value());
  auto io = RadosIoCtx::create(*cluster, state_pool());
  REQUIRE(io.has_value());

  const std::string oid = testing::unique_name("it-object");
  const std::string payload = "hcnode integration payload\n";
  REQUIRE(rados_write_full(io->get(), oid.c_str(), payload.data(), payload.size()) == 0);
  std::vector<char> back(payload.size() + 16);
  int n = rados_read(io->get(), oid.c_str(), back.data(), back.size(), 0);
  REQUIRE(n == static_cast<int>(payload.size()));
  CHECK(std::string(back.data(), static_cast<size_t>(n)) == payload);
  CHECK(rados_remove(io->get(), oid.c_str()) == 0);

  // The address fencing will blocklist: "IP:PORT/NONCE".
  auto addr = cluster->client_address();
  REQUIRE(addr.has_value());
  CHECK(addr->find('/') != std::string::npos);
}

TEST_CASE("client.hcnode may blocklist (fencing) but may not administer the cluster",
          "[ceph][rados]") {
  auto cluster = RadosCluster::connect(testing::require_ceph());
  REQUIRE(cluster.has_value());
  // A made-up client address: blocklisting it harms nobody.
  const std::string addr = "127.0.0.1:0/" + std::to_string(100000 + ::getpid());
  auto added = cluster->mon_command(R"({"prefix":"osd blocklist","blocklistop":"add","addr":")" +
                                    addr + R"(","expire":60.0})");
  INFO((added ? std::string("ok") : added.error().message()));
  CHECK(added.has_value());
  auto removed = cluster->mon_command(R"({"prefix":"osd blocklist","blocklistop":"rm","addr":")" +
                                      addr + R"("})");
  CHECK(removed.has_value());

  auto pool = cluster->mon_command(R"({"prefix":"osd pool create","pool":"hcnode-should-not-exist"})");
  REQUIRE_FALSE(pool.has_value());
  CHECK(pool.error().code() == EACCES);
  auto auth = cluster->mon_command(R"({"prefix":"auth ls"})");
  REQUIRE_FALSE(auth.has_value());
  CHECK(auth.error().code() == EACCES);
}

TEST_CASE("librbd: create, write, snapshot, clone v2, read parent data through the clone",
          "[ceph][rbd]") {
  auto cluster = RadosCluster::connect(testing::require_ceph());
  REQUIRE(cluster.has_value());
  auto io = RadosIoCtx::create(*cluster, rbd_pool());
  REQUIRE(io.has_value());

  const std::string parent = testing::unique_name("it-golden");
  const std::string child = parent + "-clone";
  const uint64_t size = 64ull << 20;
  const uint64_t features = RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK |
                            RBD_FEATURE_OBJECT_MAP | RBD_FEATURE_FAST_DIFF | RBD_FEATURE_DEEP_FLATTEN;
  int order = 22;  // 4 MiB objects
  REQUIRE(rbd_create2(io->get(), parent.c_str(), size, features, &order) == 0);
  ImageCleanup parent_cleanup{io->get(), parent};

  const auto first = pattern(1 << 20, 'a');
  const auto last = pattern(4096, 'z');
  {
    auto image = RbdImage::open(*io, parent);
    REQUIRE(image.has_value());
    CHECK(image->size().value() == size);
    REQUIRE(rbd_write(image->get(), 0, first.size(), first.data()) == static_cast<ssize_t>(first.size()));
    REQUIRE(rbd_write(image->get(), size - last.size(), last.size(), last.data()) ==
            static_cast<ssize_t>(last.size()));
    REQUIRE(rbd_flush(image->get()) == 0);
    REQUIRE(rbd_snap_create(image->get(), "golden") == 0);
  }

  // Clone v2: no snapshot protection (needs require-min-compat-client mimic on the cluster).
  rbd_image_options_t opts;
  rbd_image_options_create(&opts);
  REQUIRE(rbd_image_options_set_uint64(opts, RBD_IMAGE_OPTION_CLONE_FORMAT, 2) == 0);
  REQUIRE(rbd_image_options_set_uint64(opts, RBD_IMAGE_OPTION_FEATURES, features) == 0);
  int rc = rbd_clone3(io->get(), parent.c_str(), "golden", io->get(), child.c_str(), opts);
  rbd_image_options_destroy(opts);
  REQUIRE(rc == 0);
  ImageCleanup child_cleanup{io->get(), child};

  {
    auto clone = RbdImage::open(*io, child);
    REQUIRE(clone.has_value());
    rbd_linked_image_spec_t parent_spec{};
    rbd_snap_spec_t snap_spec{};
    REQUIRE(rbd_get_parent(clone->get(), &parent_spec, &snap_spec) == 0);
    CHECK(std::string(parent_spec.image_name) == parent);
    CHECK(std::string(snap_spec.name) == "golden");
    rbd_linked_image_spec_cleanup(&parent_spec);
    rbd_snap_spec_cleanup(&snap_spec);

    // Parent data, read through the clone.
    CHECK(read_image(clone->get(), 0, first.size()) == first);
    CHECK(read_image(clone->get(), size - last.size(), last.size()) == last);

    // A write to the clone diverges from the parent (copy-up of that object only).
    const auto mine = pattern(4096, 'M');
    REQUIRE(rbd_write(clone->get(), 8192, mine.size(), mine.data()) == static_cast<ssize_t>(mine.size()));
    REQUIRE(rbd_flush(clone->get()) == 0);
    CHECK(read_image(clone->get(), 8192, mine.size()) == mine);
    // Untouched parts of the same object still come from the parent.
    CHECK(read_image(clone->get(), 0, 8192) == std::vector<char>(first.begin(), first.begin() + 8192));
  }
  {
    auto golden = RbdImage::open(*io, parent, std::string("golden"), /*read_only=*/true);
    REQUIRE(golden.has_value());
    CHECK(read_image(golden->get(), 0, first.size()) == first);
  }
  // Remove in dependency order: clone, then the snapshot, then the parent.
  REQUIRE(rbd_remove(io->get(), child.c_str()) == 0);
  {
    auto image = RbdImage::open(*io, parent);
    REQUIRE(image.has_value());
    REQUIRE(rbd_snap_remove(image->get(), "golden") == 0);
  }
}
