// The queue of a qcow2 image: guest requests become coroutines (task.hpp) that issue I/O to the
// image's file and backing queues; the worker's poll on event_fd() (an epoll set of the inner
// queues' eventfds and our own) drives them from reap().
#pragma once

#include <memory>

#include "base/result.hpp"
#include "blockdev/backend.hpp"

namespace hcnode::blockdev::qcow2 {

struct ImageState;

Result<std::unique_ptr<BackendQueue>> make_qcow2_queue(std::shared_ptr<ImageState> state,
                                                       const BackendInfo& info, size_t depth);

}  // namespace hcnode::blockdev::qcow2
