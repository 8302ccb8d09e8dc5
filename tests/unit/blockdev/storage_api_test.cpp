// The dlopen tables of librados/librbd (blockdev/rbd/ceph_api.hpp) and gfapi
// (blockdev/gluster/gfapi_api.hpp): a missing library or function is an error Result, never a
// crash; and what a table binds is what the static linker binds for a program built against the
// same headers (this test binary links the libraries directly, through hcnode_storage, so
// &::fn is the linker's choice — for gfapi's versioned symbols, the version it picked).
#include <cerrno>
#include <string>

#include <catch2/catch.hpp>

#include "base/shared_library.hpp"
#include "blockdev/gluster/gfapi_api.hpp"
#include "blockdev/rbd/ceph_api.hpp"

using namespace hcnode;
using namespace hcnode::blockdev;

namespace {
constexpr const char* kMissing = "libhcnode-no-such-library.so.7";

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}
}  // namespace

// The table's entry for fn is the address this binary's own (linked) reference to fn has.
#define HCN_SAME(fn) CHECK(api.fn == &::fn)

TEST_CASE("SharedLibrary: a soname that does not exist is ELIBACC naming it", "[blockdev][dlopen]") {
  auto lib = SharedLibrary::open(kMissing);
  REQUIRE_FALSE(lib);
  CHECK(lib.error().code() == ELIBACC);
  CHECK(contains(lib.error().context(), std::string(kMissing) + " not loadable: "));
  // dlerror's own text follows: it names the file it could not open.
  CHECK(contains(lib.error().context(), "cannot open shared object file"));
}

TEST_CASE("SharedLibrary: a missing symbol or symbol version is ELIBBAD naming it",
          "[blockdev][dlopen]") {
  auto libc = SharedLibrary::open("libc.so.6");
  REQUIRE(libc);
  auto missing = libc->symbol("hcnode_no_such_function");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code() == ELIBBAD);
  CHECK(contains(missing.error().context(), "libc.so.6 has no symbol hcnode_no_such_function"));

  auto gfapi = SharedLibrary::open(kGfapiSoname);
  REQUIRE(gfapi);
  auto no_version = gfapi->symbol("glfs_pread", "GFAPI_99.0");
  REQUIRE_FALSE(no_version);
  CHECK(no_version.error().code() == ELIBBAD);
  CHECK(contains(no_version.error().context(), "has no symbol glfs_pread@GFAPI_99.0"));
  // The same name with a version the library has resolves.
  CHECK(gfapi->symbol("glfs_pread", "GFAPI_6.0"));
}

TEST_CASE("load_ceph_api: a missing librados or librbd is an error naming that library",
          "[blockdev][dlopen]") {
  auto no_rados = load_ceph_api(kMissing, kRbdSoname);
  REQUIRE_FALSE(no_rados);
  CHECK(no_rados.error().code() == ELIBACC);
  CHECK(contains(no_rados.error().context(), std::string(kMissing) + " not loadable"));

  auto no_rbd = load_ceph_api(kRadosSoname, kMissing);
  REQUIRE_FALSE(no_rbd);
  CHECK(no_rbd.error().code() == ELIBACC);
  CHECK(contains(no_rbd.error().context(), std::string(kMissing) + " not loadable"));
}

TEST_CASE("load_ceph_api / load_gfapi_api: a library without the functions is ELIBBAD",
          "[blockdev][dlopen]") {
  // libc loads fine but has none of the functions: the first one asked for is named.
  auto ceph = load_ceph_api("libc.so.6", "libc.so.6");
  REQUIRE_FALSE(ceph);
  CHECK(ceph.error().code() == ELIBBAD);
  CHECK(contains(ceph.error().context(), "libc.so.6 has no symbol rados_create2"));

  // librados has the rados_* functions but not librbd's: the rbd_* half fails.
  auto rbd_half = load_ceph_api(kRadosSoname, kRadosSoname);
  REQUIRE_FALSE(rbd_half);
  CHECK(rbd_half.error().code() == ELIBBAD);
  CHECK(contains(rbd_half.error().context(), "librados.so.2 has no symbol rbd_open"));

  auto gfapi = load_gfapi_api("libc.so.6");
  REQUIRE_FALSE(gfapi);
  CHECK(gfapi.error().code() == ELIBBAD);
  CHECK(contains(gfapi.error().context(), "libc.so.6 has no symbol glfs_new@GFAPI_3.4.0"));

  auto no_gfapi = load_gfapi_api(kMissing);
  REQUIRE_FALSE(no_gfapi);
  CHECK(no_gfapi.error().code() == ELIBACC);
}

TEST_CASE("ceph_api binds the functions the static linker binds from librados.h and librbd.h",
          "[blockdev][dlopen]") {
  auto loaded = ceph_api();
  REQUIRE(loaded);
  const CephApi& api = **loaded;
  auto again = ceph_api();
  REQUIRE(again);
  CHECK(*again == *loaded);  // loaded once per process
  HCN_SAME(rados_create2);
  HCN_SAME(rados_conf_read_file);
  HCN_SAME(rados_conf_set);
  HCN_SAME(rados_conf_get);
  HCN_SAME(rados_connect);
  HCN_SAME(rados_shutdown);
  HCN_SAME(rados_getaddrs);
  HCN_SAME(rados_mon_command);
  HCN_SAME(rados_buffer_free);
  HCN_SAME(rados_ioctx_create);
  HCN_SAME(rados_ioctx_set_namespace);
  HCN_SAME(rados_ioctx_destroy);
  HCN_SAME(rbd_open);
  HCN_SAME(rbd_open_read_only);
  HCN_SAME(rbd_close);
  HCN_SAME(rbd_stat);
  HCN_SAME(rbd_get_size);
  HCN_SAME(rbd_aio_create_completion);
  HCN_SAME(rbd_aio_get_return_value);
  HCN_SAME(rbd_aio_release);
  HCN_SAME(rbd_aio_readv);
  HCN_SAME(rbd_aio_writev);
  HCN_SAME(rbd_aio_flush);
  HCN_SAME(rbd_aio_discard);
  HCN_SAME(rbd_aio_write_zeroes);
}

TEST_CASE("gfapi_api binds the symbol versions the static linker binds from glfs.h",
          "[blockdev][dlopen]") {
  auto loaded = gfapi_api();
  REQUIRE(loaded);
  const GfapiApi& api = **loaded;
  HCN_SAME(glfs_new);
  HCN_SAME(glfs_set_volfile_server);
  HCN_SAME(glfs_set_logging);
  HCN_SAME(glfs_init);
  HCN_SAME(glfs_fini);
  HCN_SAME(glfs_unlink);
  HCN_SAME(glfs_open);
  HCN_SAME(glfs_creat);
  HCN_SAME(glfs_close);
  HCN_SAME(glfs_fstat);
  // The ones with a GFAPI_3.x twin of another signature: the linker took GFAPI_6.0.
  HCN_SAME(glfs_pread);
  HCN_SAME(glfs_pwrite);
  HCN_SAME(glfs_fsync);
  HCN_SAME(glfs_preadv_async);
  HCN_SAME(glfs_pwritev_async);
  HCN_SAME(glfs_fdatasync_async);
  HCN_SAME(glfs_discard_async);
  HCN_SAME(glfs_zerofill_async);
}
