// gfapi (libgfapi.so.0), loaded when the process first needs it (dlopen:
// base/shared_library.hpp), for the same reason and in the same way as librados/librbd
// (blockdev/rbd/ceph_api.hpp): hcnode-vmm's ELF does not NEED it, the first gluster:// disk
// loads it (GlfsVolume::connect), and the tools that link it find the copy already loaded.
//
// gfapi versions its symbols and changed several signatures in GFAPI_6.0 (glfs_pread/pwrite
// and the async calls gained the pre/post stat arguments, glfs_io_cbk its stat pointers); the
// old versions stay exported beside them. dlsym would return the library's default version,
// whatever a future gfapi makes that; dlvsym binds the version glfs.h declares with
// GFAPI_PUBLIC(fn, version) — the one whose signature decltype(&::fn) has, and the one the
// static linker binds for a program built against this header.
#pragma once

#include <glusterfs/api/glfs.h>

#include "base/result.hpp"
#include "base/shared_library.hpp"

namespace hcnode::blockdev {

inline constexpr const char* kGfapiSoname = "libgfapi.so.0";

struct GfapiApi {
  SharedLibrary library;

  decltype(&::glfs_new) glfs_new = nullptr;
  decltype(&::glfs_set_volfile_server) glfs_set_volfile_server = nullptr;
  decltype(&::glfs_set_logging) glfs_set_logging = nullptr;
  decltype(&::glfs_set_xlator_option) glfs_set_xlator_option = nullptr;
  decltype(&::glfs_init) glfs_init = nullptr;
  decltype(&::glfs_fini) glfs_fini = nullptr;
  decltype(&::glfs_unlink) glfs_unlink = nullptr;
  decltype(&::glfs_open) glfs_open = nullptr;
  decltype(&::glfs_creat) glfs_creat = nullptr;
  decltype(&::glfs_close) glfs_close = nullptr;
  decltype(&::glfs_fstat) glfs_fstat = nullptr;
  decltype(&::glfs_pread) glfs_pread = nullptr;
  decltype(&::glfs_pwrite) glfs_pwrite = nullptr;
  decltype(&::glfs_fsync) glfs_fsync = nullptr;
  decltype(&::glfs_preadv_async) glfs_preadv_async = nullptr;
  decltype(&::glfs_pwritev_async) glfs_pwritev_async = nullptr;
  decltype(&::glfs_fdatasync_async) glfs_fdatasync_async = nullptr;
  decltype(&::glfs_discard_async) glfs_discard_async = nullptr;
  decltype(&::glfs_zerofill_async) glfs_zerofill_async = nullptr;
};

// The process's table: loads libgfapi.so.0 on the first call (thread-safe, once); later calls
// return the same table or the same error: ELIBACC "libgfapi.so.0 not loadable: <dlerror>",
// ELIBBAD for a missing function or version. The table lives until the process exits.
Result<const GfapiApi*> gfapi_api();

// Loads a table from the given soname, without the process's cache (tests).
Result<GfapiApi> load_gfapi_api(const char* soname);

}  // namespace hcnode::blockdev
