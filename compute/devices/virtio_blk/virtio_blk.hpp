// VirtioBlk: the block device (virtio 1.2 5.2) in front of a blockdev::Backend (librbd, gfapi,
// io_uring). The guest's requests go from the virtqueue straight to the backend's async calls
// inside this process — no kernel block device, NBD or FUSE in between.
//
// Queues and threads: one worker thread per enabled virtqueue ("blk0-q0", "blk0-q1", ...), each
// with its own BackendQueue. A worker's EventLoop polls two fds: the queue's notifier (KVM
// ioeventfd) and its backend queue's completion eventfd. On a notification it pops chains,
// parses them (blk_request.hpp, pure code), and submits them; on completions it writes the
// status byte, puts the chain in the used ring and interrupts the guest once per batch with
// EVENT_IDX suppression (SplitQueue::needs_notification). vCPU threads never touch a request.
//
// Ordering and durability: the status of a write is written only from the backend's completion
// (storage acknowledged it); a FLUSH is passed to the backend, which completes it only when
// every earlier completed write is durable (blockdev/backend.hpp). If the driver did not
// negotiate VIRTIO_BLK_F_FLUSH, it believes the disk has no volatile cache, so every write is
// followed by a backend flush before it completes (5.2.5: without FLUSH the device must behave
// as write-through).
//
// Hostile guests: a malformed chain (descriptor_chain.hpp) is returned with used length 0; a
// malformed request gets IOERR or UNSUPP in its status byte (blk_request.hpp); a corrupt ring
// (SplitQueue's QueueError) sets DEVICE_NEEDS_RESET and that queue's worker stops touching it —
// other queues and other disks carry on. None of it can stop the VMM.
//
// Pause/reset: pause() stops the workers, waits for every in-flight backend request, completes
// them into the used ring and interrupts: afterwards nothing is in flight and the queue state is
// stable (migration saves it). reset() does the same but drops the completions (the driver
// forgot the queues). Both block the calling (vCPU or control) thread for the drain.
//
// Thread-safety: activate/reset/pause/resume from vCPU or control threads, serialized by mu_.
// stats() from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/latency_histogram.hpp"
#include "blockdev/backend.hpp"
#include "compute/virtio/virtio_device.hpp"

namespace hcnode::compute::virtio {

struct BlkDeviceConfig {
  std::string name = "blk0";  // logs and thread names ("blk0-q1")
  std::string serial;         // GET_ID, up to 20 bytes
  uint16_t num_queues = 1;    // offered with VIRTIO_BLK_F_MQ
  uint16_t queue_size = 256;
};

// Per-disk counters (sum over queues).
struct BlkStats {
  uint64_t read_ops = 0, write_ops = 0, flush_ops = 0, discard_ops = 0, write_zeroes_ops = 0,
           get_id_ops = 0;
  uint64_t read_bytes = 0, write_bytes = 0;
  uint64_t errors = 0;        // requests completed with IOERR/UNSUPP
  uint64_t bad_chains = 0;    // malformed descriptor chains
  uint64_t in_flight = 0;     // at the backend now
  uint64_t queues_broken = 0; // corrupt rings (NEEDS_RESET)
  LatencyHistogram::Snapshot latency_ns;  // backend requests, pop to completion
};

class VirtioBlk final : public VirtioDevice {
 public:
  static constexpr uint16_t kMaxQueues = 64;

  VirtioBlk(BlkDeviceConfig config, std::shared_ptr<blockdev::Backend> backend);
  ~VirtioBlk() override;
  VirtioBlk(const VirtioBlk&) = delete;
  VirtioBlk& operator=(const VirtioBlk&) = delete;

  uint32_t device_type() const override;
  std::string name() const override { return config_.name; }
  uint64_t device_features() const override;
  std::vector<uint16_t> queue_max_sizes() const override;
  void read_config(uint64_t offset, std::span<uint8_t> data) override;
  uint32_t config_size() const override;

  Status activate(ActivationContext context) override;
  void reset() override;
  Status pause() override;
  Status resume() override;
  // Queue positions and negotiated features (JSON, version 1); the device must be paused or
  // inactive. Restoring it is the live-migration issue's part.
  Result<std::vector<uint8_t>> save_state() const override;

  BlkStats stats() const;
  const blockdev::Backend& backend() const { return *backend_; }
  const BlkDeviceConfig& config() const { return config_; }

 private:
  class Worker;

  void stop_workers_locked(bool complete_in_flight);

  const BlkDeviceConfig config_;
  const std::shared_ptr<blockdev::Backend> backend_;
  std::vector<uint8_t> config_space_;  // struct virtio_blk_config, fixed at construction

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Worker>> workers_;  // guarded by mu_
  bool paused_ = false;                           // guarded by mu_
  uint64_t features_ = 0;                         // guarded by mu_: negotiated
  BlkStats retired_;  // guarded by mu_: counters of workers that were reset
};

}  // namespace hcnode::compute::virtio
