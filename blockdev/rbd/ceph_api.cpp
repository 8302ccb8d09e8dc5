#include "blockdev/rbd/ceph_api.hpp"

namespace hcnode::blockdev {

// Binds api.fn to the library's symbol of the same name, typed from the header: the name and
// the type cannot disagree.
#define HCN_BIND(library, api, fn) \
  (api).fn = HCN_TRY((library).function<decltype(&::fn)>(#fn))

Result<CephApi> load_ceph_api(const char* rados_soname, const char* rbd_soname) {
  // librbd NEEDs librados, so librados first: a missing librados is reported by its own name.
  auto rados = HCN_TRY(SharedLibrary::open(rados_soname));
  auto rbd = HCN_TRY(SharedLibrary::open(rbd_soname));
  CephApi api{.rados_library = std::move(rados), .rbd_library = std::move(rbd)};
  const SharedLibrary& r = api.rados_library;
  HCN_BIND(r, api, rados_create2);
  HCN_BIND(r, api, rados_conf_read_file);
  HCN_BIND(r, api, rados_conf_set);
  HCN_BIND(r, api, rados_conf_get);
  HCN_BIND(r, api, rados_connect);
  HCN_BIND(r, api, rados_shutdown);
  HCN_BIND(r, api, rados_getaddrs);
  HCN_BIND(r, api, rados_mon_command);
  HCN_BIND(r, api, rados_buffer_free);
  HCN_BIND(r, api, rados_ioctx_create);
  HCN_BIND(r, api, rados_ioctx_set_namespace);
  HCN_BIND(r, api, rados_ioctx_destroy);
  const SharedLibrary& b = api.rbd_library;
  HCN_BIND(b, api, rbd_open);
  HCN_BIND(b, api, rbd_open_read_only);
  HCN_BIND(b, api, rbd_close);
  HCN_BIND(b, api, rbd_stat);
  HCN_BIND(b, api, rbd_get_size);
  HCN_BIND(b, api, rbd_aio_create_completion);
  HCN_BIND(b, api, rbd_aio_get_return_value);
  HCN_BIND(b, api, rbd_aio_release);
  HCN_BIND(b, api, rbd_aio_readv);
  HCN_BIND(b, api, rbd_aio_writev);
  HCN_BIND(b, api, rbd_aio_flush);
  HCN_BIND(b, api, rbd_aio_discard);
  HCN_BIND(b, api, rbd_aio_write_zeroes);
  return api;
}

#undef HCN_BIND

Result<const CephApi*> ceph_api() {
  // Loaded once (a function-local static is initialised exactly once, thread-safely) and
  // never destroyed: librados' and librbd's threads call back into this process until it ends.
  static const Result<CephApi>* const loaded =
      new Result<CephApi>(load_ceph_api(kRadosSoname, kRbdSoname));
  if (!*loaded) return fail(loaded->error());
  return &**loaded;
}

}  // namespace hcnode::blockdev
