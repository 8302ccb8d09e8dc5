#include "base/event_fd.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

namespace hcnode {

Result<EventFd> EventFd::create(int flags) {
  int fd = ::eventfd(0, flags | EFD_CLOEXEC);
  if (fd < 0) {
    return fail(from_errno("eventfd"));
  }
  return EventFd(Fd(fd));
}

Status EventFd::signal(uint64_t n) const {
  for (;;) {
    ssize_t r = ::write(fd_.get(), &n, sizeof n);
    if (r == static_cast<ssize_t>(sizeof n)) {
      return {};
    }
    if (r < 0 && errno == EINTR) {
      continue;
    }
    return fail(from_errno("eventfd write"));
  }
}

Result<uint64_t> EventFd::consume() const {
  uint64_t value = 0;
  for (;;) {
    ssize_t r = ::read(fd_.get(), &value, sizeof value);
    if (r == static_cast<ssize_t>(sizeof value)) {
      return value;
    }
    if (r < 0 && errno == EINTR) {
      continue;
    }
    if (r < 0 && errno == EAGAIN) {
      return 0;
    }
    return fail(from_errno("eventfd read"));
  }
}

}  // namespace hcnode
