#include "blockdev/gluster/gfapi_api.hpp"

namespace hcnode::blockdev {

// Binds api.fn to the library's fn@GFAPI_<version>, typed from the header. The versions are
// the GFAPI_PUBLIC(fn, version) annotations of glfs.h (glusterfs 10), checked against
// `objdump -T libgfapi.so.0`.
#define HCN_BIND(library, api, fn, version) \
  (api).fn = HCN_TRY((library).function<decltype(&::fn)>(#fn, "GFAPI_" version))

Result<GfapiApi> load_gfapi_api(const char* soname) {
  GfapiApi api{.library = HCN_TRY(SharedLibrary::open(soname))};
  const SharedLibrary& l = api.library;
  HCN_BIND(l, api, glfs_new, "3.4.0");
  HCN_BIND(l, api, glfs_set_volfile_server, "3.4.0");
  HCN_BIND(l, api, glfs_set_logging, "3.4.0");
  HCN_BIND(l, api, glfs_set_xlator_option, "3.4.0");
  HCN_BIND(l, api, glfs_init, "3.4.0");
  HCN_BIND(l, api, glfs_fini, "3.4.0");
  HCN_BIND(l, api, glfs_unlink, "3.4.0");
  HCN_BIND(l, api, glfs_open, "3.4.0");
  HCN_BIND(l, api, glfs_creat, "3.4.0");
  HCN_BIND(l, api, glfs_close, "3.4.0");
  HCN_BIND(l, api, glfs_fstat, "3.4.0");
  // 6.0: the signatures with struct glfs_stat pre/post arguments and the 6.0 glfs_io_cbk.
  HCN_BIND(l, api, glfs_pread, "6.0");
  HCN_BIND(l, api, glfs_pwrite, "6.0");
  HCN_BIND(l, api, glfs_fsync, "6.0");
  HCN_BIND(l, api, glfs_preadv_async, "6.0");
  HCN_BIND(l, api, glfs_pwritev_async, "6.0");
  HCN_BIND(l, api, glfs_fdatasync_async, "6.0");
  HCN_BIND(l, api, glfs_discard_async, "6.0");
  HCN_BIND(l, api, glfs_zerofill_async, "6.0");
  return api;
}

#undef HCN_BIND

Result<const GfapiApi*> gfapi_api() {
  // Loaded once (thread-safe static initialisation) and never destroyed: gfapi's event threads
  // call back into this process until it ends (a volume may skip glfs_fini at exit).
  static const Result<GfapiApi>* const loaded = new Result<GfapiApi>(load_gfapi_api(kGfapiSoname));
  if (!*loaded) return fail(loaded->error());
  return &**loaded;
}

}  // namespace hcnode::blockdev
