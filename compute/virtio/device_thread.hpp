// The worker thread of a virtio device queue: runs the device's EventLoop on a named thread
// ("rng0", "blk0-q1"). If the loop fails or the body throws, the device is of no more use to
// the driver until it resets it: DEVICE_NEEDS_RESET (virtio 1.2 2.1.2) through `interrupt`.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "base/event_loop.hpp"
#include "compute/virtio/virtio_device.hpp"

namespace hcnode::compute::virtio {

// `loop` must outlive the thread: stop it (EventLoop::stop) and join before destroying it.
std::jthread spawn_device_thread(const std::string& name, EventLoop& loop,
                                 std::shared_ptr<VirtioInterrupt> interrupt);

}  // namespace hcnode::compute::virtio
