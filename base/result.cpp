#include "base/result.hpp"

#include <cstring>

namespace hcnode {

std::string Error::message() const {
  // strerror_r (GNU variant) returns a pointer to a static or the supplied buffer.
  char buf[128];
  const char* text = strerror_r(code_, buf, sizeof buf);
  if (context_.empty()) {
    return text;
  }
  return context_ + ": " + text;
}

Error Error::wrap(std::string_view outer) const& {
  return Error(code_, std::string(outer) + ": " + context_);
}

Error from_errno(std::string context) {
  const int e = errno;
  return Error(e != 0 ? e : EIO, std::move(context));
}

Error from_negative_errno(int rc, std::string context) {
  return Error(rc < 0 ? -rc : (rc > 0 ? rc : EIO), std::move(context));
}

}  // namespace hcnode
