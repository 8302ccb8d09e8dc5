// RecordingInterrupt: the transport's side of a virtio device in unit tests — counts the
// device's interrupts and remembers DEVICE_NEEDS_RESET. Thread-safe (device workers call it).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include "compute/virtio/virtio_device.hpp"

namespace hcnode::testing {

struct RecordingInterrupt final : compute::virtio::VirtioInterrupt {
  std::atomic<int> queue_notifications{0};
  std::atomic<int> config_notifications{0};
  std::atomic<bool> needs_reset{false};
  void notify_queue(uint16_t) override { ++queue_notifications; }
  void notify_config() override { ++config_notifications; }
  void set_needs_reset() override { needs_reset = true; }
};

// Polls `done` every millisecond until it holds or `timeout` passes; returns whether it held.
inline bool wait_until(const std::function<bool()>& done,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace hcnode::testing
