#include "base/shared_library.hpp"

#include <dlfcn.h>

namespace hcnode {
namespace {

std::string last_dlerror() {
  const char* text = dlerror();
  return text != nullptr ? text : "unknown dlerror";
}

}  // namespace

Result<SharedLibrary> SharedLibrary::open(const std::string& soname) {
  void* handle = dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (handle == nullptr) {
    return fail(ELIBACC, soname + " not loadable: " + last_dlerror());
  }
  return SharedLibrary(handle, soname);
}

Result<void*> SharedLibrary::symbol(const char* name, const char* version) const {
  dlerror();  // clear: a null symbol value is not by itself an error (dlsym(3))
  void* address = version != nullptr ? dlvsym(handle_, name, version) : dlsym(handle_, name);
  if (address == nullptr) {
    const std::string what = version != nullptr ? std::string(name) + "@" + version : name;
    return fail(ELIBBAD, soname_ + " has no symbol " + what + ": " + last_dlerror());
  }
  return address;
}

void SharedLibrary::reset() {
  if (handle_ != nullptr) {
    // RTLD_NODELETE: this drops the reference only, the code stays mapped (see the header).
    dlclose(handle_);
    handle_ = nullptr;
  }
}

}  // namespace hcnode
