// VirtioRng: the entropy device (virtio 1.2 5.4): device id 4, one request queue, no device
// configuration, no feature bits besides VIRTIO_F_VERSION_1. The driver posts device-writable
// buffers; the device fills them with random bytes and returns each with used length = bytes
// written (5.4.6: "The device MUST place one or more random bytes into the buffer").
//
// Processing runs on one worker thread (named after the device, "rng0"), an EventLoop polling
// the queue's notifier eventfd (ioeventfd or the transport's fallback), started by activate()
// and stopped by reset()/pause(). Per wake-up it drains the queue with notifications suppressed,
// re-enables them and re-checks (SplitQueue::enable_notification), then interrupts at most once.
//
// Guest errors: a malformed chain is completed with used length 0 and counted; a broken ring
// (QueueError) sets DEVICE_NEEDS_RESET and the worker stops touching the queue. A request is
// served at most kMaxBytesPerRequest bytes (an honest driver asks for far less), so one huge
// buffer cannot keep the worker busy.
//
// Thread-safety: activate/reset/pause/resume come from vCPU threads (serialized by the
// transport) and are additionally guarded by a mutex; the queue belongs to the worker while it
// runs and to the caller after the worker has been joined.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>

#include "base/event_loop.hpp"
#include "base/result.hpp"
#include "compute/virtio/virtio_device.hpp"

namespace hcnode::compute::virtio {

class VirtioRng final : public VirtioDevice {
 public:
  // Fills `out` (or a prefix of it) with random bytes; returns how many. Injectable for tests.
  using EntropySource = std::function<Result<size_t>(std::span<uint8_t> out)>;

  static constexpr uint16_t kQueueSize = 256;
  static constexpr uint32_t kMaxBytesPerRequest = 64 * 1024;

  // getrandom(2) from the host kernel's CSPRNG.
  static Result<size_t> host_random(std::span<uint8_t> out);

  explicit VirtioRng(std::string name = "rng0", EntropySource source = host_random);
  ~VirtioRng() override;

  VirtioRng(const VirtioRng&) = delete;
  VirtioRng& operator=(const VirtioRng&) = delete;

  uint32_t device_type() const override;
  std::string name() const override { return name_; }
  uint64_t device_features() const override;
  std::vector<uint16_t> queue_max_sizes() const override { return {kQueueSize}; }

  Status activate(ActivationContext context) override;
  void reset() override;
  Status pause() override;
  Status resume() override;

  // Counters for `describe` and tests.
  uint64_t bytes_served() const { return bytes_served_.load(std::memory_order_relaxed); }
  uint64_t bad_chains() const { return bad_chains_.load(std::memory_order_relaxed); }

 private:
  struct Active {
    const GuestMemory* memory;
    ActiveQueue queue;
    std::shared_ptr<VirtioInterrupt> interrupt;
    bool broken = false;  // the ring is corrupt: NEEDS_RESET was set, stop touching it
  };

  Status start_worker_locked();
  void stop_worker_locked();
  // Runs on the worker thread: serves every available chain.
  void process_queue();
  uint32_t fill(const DescriptorChain& chain);

  const std::string name_;
  const EntropySource source_;

  std::mutex mu_;  // serializes activate/reset/pause/resume
  std::optional<Active> active_;     // guarded by mu_ while no worker runs; the worker's otherwise
  bool paused_ = false;              // guarded by mu_
  std::unique_ptr<EventLoop> loop_;  // guarded by mu_
  std::jthread worker_;              // guarded by mu_

  std::atomic<uint64_t> bytes_served_{0};  // statistics, read from any thread
  std::atomic<uint64_t> bad_chains_{0};
};

}  // namespace hcnode::compute::virtio
