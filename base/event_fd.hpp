// EventFd: an owned eventfd(2), the wake-up primitive between threads (completion queues,
// ioeventfd/irqfd for KVM, loop stop requests).
//
// Thread-safety: signal() may be called from any thread (it is one write(2)); consume() by the
// thread that polls the fd.
#pragma once

#include <cstdint>

#include "base/fd.hpp"
#include "base/result.hpp"

namespace hcnode {

class EventFd {
 public:
  // flags: EFD_NONBLOCK / EFD_SEMAPHORE; EFD_CLOEXEC is always added.
  static Result<EventFd> create(int flags = 0);

  int fd() const { return fd_.get(); }

  // Adds n to the counter (wakes pollers). Never blocks unless the counter would overflow.
  Status signal(uint64_t n = 1) const;

  // Reads and resets the counter. On a non-blocking eventfd with a zero counter returns 0.
  Result<uint64_t> consume() const;

 private:
  explicit EventFd(Fd fd) : fd_(std::move(fd)) {}
  Fd fd_;
};

}  // namespace hcnode
