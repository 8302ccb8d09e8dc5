// librados and librbd, loaded when the process first needs them (dlopen: base/shared_library.hpp).
//
// hcnode-vmm's ELF does not NEED librados/librbd (tests/integration/vmm_elf_test.cpp checks
// the binary): linking them put libceph-common, boost, krb5, rdma and ~40 more shared libraries
// into every VMM, disk or not (issue 10 §4: 23 MiB of memory overhead instead of 3). Every
// librados/librbd call in blockdev goes through this table instead, filled on the first RBD
// disk (RadosCluster::connect). The control-plane tools (storage/, hcctl) link the libraries
// as usual; dlopen then finds the copy already loaded, so both see the same library.
//
// The members are named after the functions and typed from the headers (decltype(&::f)), so a
// call reads `api.rbd_open(...)` and the compiler checks every call against librbd.h. Only the
// C API crosses: librbd is C++ with its own libstdc++.so; the Release VMM's libstdc++ is static.
#pragma once

#include <rados/librados.h>
#include <rbd/librbd.h>

#include "base/result.hpp"
#include "base/shared_library.hpp"

namespace hcnode::blockdev {

inline constexpr const char* kRadosSoname = "librados.so.2";
inline constexpr const char* kRbdSoname = "librbd.so.1";

// Filled by load_ceph_api; every function is set in a table it returns.
struct CephApi {
  SharedLibrary rados_library;
  SharedLibrary rbd_library;

  // librados (librados.h; the library's symbols are unversioned)
  decltype(&::rados_create2) rados_create2 = nullptr;
  decltype(&::rados_conf_read_file) rados_conf_read_file = nullptr;
  decltype(&::rados_conf_set) rados_conf_set = nullptr;
  decltype(&::rados_conf_get) rados_conf_get = nullptr;
  decltype(&::rados_connect) rados_connect = nullptr;
  decltype(&::rados_shutdown) rados_shutdown = nullptr;
  decltype(&::rados_getaddrs) rados_getaddrs = nullptr;
  decltype(&::rados_mon_command) rados_mon_command = nullptr;
  decltype(&::rados_buffer_free) rados_buffer_free = nullptr;
  decltype(&::rados_ioctx_create) rados_ioctx_create = nullptr;
  decltype(&::rados_ioctx_set_namespace) rados_ioctx_set_namespace = nullptr;
  decltype(&::rados_ioctx_destroy) rados_ioctx_destroy = nullptr;

  // librbd (librbd.h; unversioned too)
  decltype(&::rbd_open) rbd_open = nullptr;
  decltype(&::rbd_open_read_only) rbd_open_read_only = nullptr;
  decltype(&::rbd_close) rbd_close = nullptr;
  decltype(&::rbd_stat) rbd_stat = nullptr;
  decltype(&::rbd_get_size) rbd_get_size = nullptr;
  decltype(&::rbd_aio_create_completion) rbd_aio_create_completion = nullptr;
  decltype(&::rbd_aio_get_return_value) rbd_aio_get_return_value = nullptr;
  decltype(&::rbd_aio_release) rbd_aio_release = nullptr;
  decltype(&::rbd_aio_readv) rbd_aio_readv = nullptr;
  decltype(&::rbd_aio_writev) rbd_aio_writev = nullptr;
  decltype(&::rbd_aio_flush) rbd_aio_flush = nullptr;
  decltype(&::rbd_aio_discard) rbd_aio_discard = nullptr;
  decltype(&::rbd_aio_write_zeroes) rbd_aio_write_zeroes = nullptr;
};

// The process's table: loads librados.so.2 and librbd.so.1 on the first call (thread-safe,
// once); later calls return the same table, or the same error. Fails with ELIBACC when a
// library cannot be loaded ("librbd.so.1 not loadable: <dlerror>") or ELIBBAD when it lacks a
// function; the table lives until the process exits.
Result<const CephApi*> ceph_api();

// Loads a table from the given sonames, without the process's cache (tests: a missing library
// or symbol is an error, never a crash).
Result<CephApi> load_ceph_api(const char* rados_soname, const char* rbd_soname);

}  // namespace hcnode::blockdev
