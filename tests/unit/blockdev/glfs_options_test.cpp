// GlfsVolume's client options (blockdev/gluster/glfs_handles.cpp): every volume instance asks
// write-behind for strict write ordering before glfs_init. Without it, gfapi 10.3 let a write it
// had acknowledged land on the bricks after a later overlapping write, losing the later data (a
// qcow2 clone on Gluster lost the guest's writes into freshly copied clusters). The real effect
// is checked against Gluster by the integration test "virtio-blk on a qcow2 clone on Gluster";
// here a fake glfs_set_xlator_option records what is asked.
#include <cerrno>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "blockdev/gluster/gfapi_api.hpp"
#include "blockdev/gluster/glfs_handles.hpp"

using namespace hcnode;
using namespace hcnode::blockdev;

namespace {
struct OptionCall {
  glfs_t* fs;
  std::string xlator, key, value;
};
std::vector<OptionCall> g_calls;
int g_result = 0;

int fake_set_xlator_option(glfs_t* fs, const char* xlator, const char* key,
                           const char* value) noexcept {
  g_calls.push_back({fs, xlator, key, value});
  if (g_result < 0) errno = EINVAL;
  return g_result;
}

// The real table (so every other entry is gfapi's), with the option call faked.
GfapiApi fake_api() {
  auto api = load_gfapi_api(kGfapiSoname);
  REQUIRE(api);
  // The binding itself: the version the static linker takes from glfs.h (GFAPI_3.4.0).
  CHECK(api->glfs_set_xlator_option == &::glfs_set_xlator_option);
  api->glfs_set_xlator_option = &fake_set_xlator_option;
  return std::move(*api);
}
}  // namespace

TEST_CASE("GlfsVolume::set_client_options turns on write-behind's strict write ordering",
          "[blockdev][gluster]") {
  const GfapiApi api = fake_api();
  g_calls.clear();
  g_result = 0;
  auto* fs = reinterpret_cast<glfs_t*>(0x1000);  // never dereferenced by the fake
  REQUIRE(GlfsVolume::set_client_options(api, fs));
  REQUIRE(g_calls.size() == 1);
  CHECK(g_calls[0].fs == fs);
  CHECK(g_calls[0].xlator == "*-write-behind");
  CHECK(g_calls[0].key == "strict-write-ordering");
  CHECK(g_calls[0].value == "on");
}

TEST_CASE("GlfsVolume::set_client_options fails when gfapi refuses the option",
          "[blockdev][gluster]") {
  const GfapiApi api = fake_api();
  g_calls.clear();
  g_result = -1;
  auto status = GlfsVolume::set_client_options(api, reinterpret_cast<glfs_t*>(0x1000));
  g_result = 0;
  REQUIRE_FALSE(status);
  CHECK(status.error().code() == EINVAL);
  CHECK(status.error().message().find("strict-write-ordering") != std::string::npos);
}
