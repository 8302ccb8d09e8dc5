// The real dev cluster's replica-3 Gluster volume through gfapi.
#include <fcntl.h>

#include <vector>

#include <catch2/catch.hpp>

#include "blockdev/gluster/glfs_handles.hpp"
#include "tests/integration/requirements.hpp"

using namespace hcnode;
using namespace hcnode::blockdev;

TEST_CASE("gfapi: create, write, fsync, reopen and read a file on the volume", "[gluster]") {
  auto server = testing::require_gluster();
  // One GlfsVolume for the whole test: glfs_fini costs ~10 s here.
  auto volume = GlfsVolume::connect(server);
  REQUIRE(volume.has_value());

  const std::string path = "/" + testing::unique_name("it-gfapi") + ".img";
  std::vector<char> data(1 << 20);
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = static_cast<char>(i * 13 + i / 512);
  }
  {
    auto file = GlfsFile::create(*volume, path, O_RDWR | O_TRUNC);
    REQUIRE(file.has_value());
    REQUIRE(file->pwrite_all(data.data(), data.size(), 0).has_value());
    // A second extent beyond the first shard boundary would need >64 MiB; 1 MiB + tail suffices
    // to prove offsets are honoured.
    REQUIRE(file->pwrite_all(data.data(), 4096, 3 << 20).has_value());
    REQUIRE(file->fsync().has_value());
  }
  {
    auto file = GlfsFile::open(*volume, path, O_RDONLY);
    REQUIRE(file.has_value());
    std::vector<char> back(data.size());
    REQUIRE(file->pread_all(back.data(), back.size(), 0).has_value());
    CHECK(back == data);
    std::vector<char> tail(4096);
    REQUIRE(file->pread_all(tail.data(), tail.size(), 3 << 20).has_value());
    CHECK(std::equal(tail.begin(), tail.end(), data.begin()));
    // The hole between the extents reads as zeroes.
    std::vector<char> hole(4096);
    REQUIRE(file->pread_all(hole.data(), hole.size(), 2 << 20).has_value());
    CHECK(std::all_of(hole.begin(), hole.end(), [](char c) { return c == 0; }));
    // Reading past the end is a short read, reported as EIO by pread_all.
    auto past = file->pread_all(hole.data(), hole.size(), (3 << 20) + 2048);
    REQUIRE_FALSE(past.has_value());
    CHECK(past.error().code() == EIO);
  }
  CHECK(volume->unlink(path).has_value());
  auto gone = GlfsFile::open(*volume, path, O_RDONLY);
  REQUIRE_FALSE(gone.has_value());
  CHECK(gone.error().code() == ENOENT);
}
