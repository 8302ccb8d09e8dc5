// SharedLibrary: the one owner of a dlopen handle, for libraries a process loads only when it
// needs them (the VMM loads librados/librbd and gfapi for its first disk of that kind: a VM
// without such a disk does not carry their ~45 shared libraries; bench/boot measures it).
//
// Loading is RTLD_NOW (every symbol the library itself needs is resolved at open, so a broken
// install fails there and not at some later call), RTLD_LOCAL (its symbols do not take part in
// the resolution of anything loaded later) and RTLD_NODELETE: dlclose never unmaps it. Storage
// libraries keep threads of their own (librados' messengers, gfapi's event threads) that may
// still run at process exit; unmapping their code under them would crash, so once loaded a
// library stays until the process ends — the handle is only a token.
//
// Only C interfaces may cross this boundary: a C++ library (librbd) brings its own
// libstdc++.so while the Release VMM links libstdc++ statically.
//
// dlopen is in libc itself since glibc 2.34 (Debian 12 has 2.36): no -ldl, no libdl.so.2.
//
// Thread-safety: open and symbol may be called from any thread (dlopen/dlsym are thread-safe,
// dlerror is per thread).
#pragma once

#include <string>
#include <utility>

#include "base/result.hpp"

namespace hcnode {

class SharedLibrary {
 public:
  // dlopen(soname). ELIBACC "<soname> not loadable: <dlerror>" when it or one of its own
  // dependencies cannot be found or loaded.
  static Result<SharedLibrary> open(const std::string& soname);

  SharedLibrary(SharedLibrary&& o) noexcept
      : handle_(std::exchange(o.handle_, nullptr)), soname_(std::move(o.soname_)) {}
  SharedLibrary& operator=(SharedLibrary&& o) noexcept {
    if (this != &o) {
      reset();
      handle_ = std::exchange(o.handle_, nullptr);
      soname_ = std::move(o.soname_);
    }
    return *this;
  }
  SharedLibrary(const SharedLibrary&) = delete;
  SharedLibrary& operator=(const SharedLibrary&) = delete;
  ~SharedLibrary() { reset(); }

  const std::string& soname() const { return soname_; }

  // dlsym(name), or dlvsym(name, version) when version is given (a library with versioned
  // symbols may export several functions under one name: the version picks the one whose
  // signature the header declares). ELIBBAD "<soname> has no symbol <name>[@version]".
  Result<void*> symbol(const char* name, const char* version = nullptr) const;

  // symbol() as a function pointer of type Fn (e.g. decltype(&::rbd_open)). The caller
  // vouches that Fn is the symbol's real type: take it from the library's header.
  template <typename Fn>
  Result<Fn> function(const char* name, const char* version = nullptr) const {
    void* address = HCN_TRY(symbol(name, version));
    // SAFETY: POSIX guarantees a void* from dlsym converts to a function pointer; the type
    // comes from the header the library was built with (the caller's contract).
    return reinterpret_cast<Fn>(address);
  }

 private:
  SharedLibrary(void* handle, std::string soname) : handle_(handle), soname_(std::move(soname)) {}
  void reset();

  void* handle_ = nullptr;
  std::string soname_;
};

}  // namespace hcnode
