#include "compute/devices/virtio_blk/virtio_blk.hpp"

#include <sys/epoll.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <thread>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "base/endian.hpp"
#include "base/event_loop.hpp"
#include "compute/virtio/device_thread.hpp"
#include "compute/devices/virtio_blk/blk_request.hpp"
#include "compute/devices/virtio_blk/blk_spec.hpp"
#include "compute/virtio/constants.hpp"

namespace hcnode::compute::virtio {

using blockdev::IoKind;
using namespace blk;

namespace {

constexpr size_t kOpKinds = 6;
// Largest discard / write-zeroes range offered (the guest splits bigger ones): 1 GiB.
constexpr uint32_t kMaxRangeSectors = (1u << 30) / kSectorSize;
// Largest single data segment offered (VIRTIO_BLK_F_SIZE_MAX); drivers use pages anyway.
constexpr uint32_t kSizeMax = 1u << 20;
// At most this many warnings per queue for guest mistakes, so a hostile guest cannot flood the
// log; counters keep counting.
constexpr uint32_t kMaxGuestWarnings = 20;

uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

IoKind io_kind(BlkOp op) {
  switch (op) {
    case BlkOp::kRead: return IoKind::kRead;
    case BlkOp::kWrite: return IoKind::kWrite;
    case BlkOp::kFlush: return IoKind::kFlush;
    case BlkOp::kDiscard: return IoKind::kDiscard;
    case BlkOp::kWriteZeroes: return IoKind::kWriteZeroes;
    case BlkOp::kGetId: break;
  }
  return IoKind::kFlush;  // not reached: GET_ID never goes to the backend
}

}  // namespace

// One virtqueue's worker: owns the queue, its BackendQueue and the requests in flight.
// Thread: "blkN-qM" while running; the device's caller (under VirtioBlk::mu_) when stopped.
class VirtioBlk::Worker {
 public:
  Worker(std::string name, std::string serial, const GuestMemory& memory, ActiveQueue queue,
         std::shared_ptr<VirtioInterrupt> interrupt, std::unique_ptr<blockdev::BackendQueue> bq,
         BlkLimits limits, bool write_through)
      : name_(std::move(name)),
        serial_(std::move(serial)),
        memory_(memory),
        queue_(std::move(queue)),
        interrupt_(std::move(interrupt)),
        backend_(std::move(bq)),
        limits_(limits),
        write_through_(write_through),
        slots_(queue_.queue.size()) {
    free_.reserve(slots_.size());
    for (size_t i = slots_.size(); i > 0; --i) free_.push_back(static_cast<uint16_t>(i - 1));
    completions_.reserve(slots_.size());
  }

  ~Worker() { stop(); }

  Status start() {
    auto loop = HCN_TRY(EventLoop::create(name_));
    HCN_TRY_STATUS(loop->add(queue_.notifier->fd(), EPOLLIN, [this](uint32_t) {
      (void)queue_.notifier->consume();
      process_available();
    }));
    HCN_TRY_STATUS(loop->add(backend_->event_fd(), EPOLLIN, [this](uint32_t) {
      process_completions();
    }));
    // Chains made available before activation (or while paused) are served at once.
    loop->post([this] { process_available(); });
    loop_ = std::move(loop);
    thread_ = spawn_device_thread(name_, *loop_, interrupt_);
    return {};
  }

  // Stops the thread; requests may still be in flight at the backend.
  void stop() {
    if (loop_) loop_->stop();
    if (thread_.joinable()) thread_.join();
    loop_.reset();
  }

  // After stop(): waits for the backend, then completes every request into the used ring
  // (complete = true: pause) or forgets them (reset: the driver dropped the queue). Loops
  // because a write-through write becomes a flush when it completes.
  void drain(bool complete) {
    draining_ = true;
    do {
      backend_->drain();
      if (complete) {
        process_completions();
      } else {
        completions_.clear();
        backend_->reap(completions_);
        for (const auto& c : completions_) release(static_cast<uint16_t>(c.cookie));
        completions_.clear();
      }
    } while (in_flight_.load(std::memory_order_relaxed) > 0);
    draining_ = false;
    blocked_ = false;
  }

  // After stop(): where the queue stands (live migration rebuilds it from this).
  uint16_t index() const { return queue_.index; }
  SplitQueueState queue_state() const { return queue_.queue.save(); }

  void add_stats(BlkStats& s) const {
    s.read_ops += ops_[static_cast<size_t>(BlkOp::kRead)].load(std::memory_order_relaxed);
    s.write_ops += ops_[static_cast<size_t>(BlkOp::kWrite)].load(std::memory_order_relaxed);
    s.flush_ops += ops_[static_cast<size_t>(BlkOp::kFlush)].load(std::memory_order_relaxed);
    s.discard_ops += ops_[static_cast<size_t>(BlkOp::kDiscard)].load(std::memory_order_relaxed);
    s.write_zeroes_ops +=
        ops_[static_cast<size_t>(BlkOp::kWriteZeroes)].load(std::memory_order_relaxed);
    s.get_id_ops += ops_[static_cast<size_t>(BlkOp::kGetId)].load(std::memory_order_relaxed);
    s.read_bytes += read_bytes_.load(std::memory_order_relaxed);
    s.write_bytes += write_bytes_.load(std::memory_order_relaxed);
    s.errors += errors_.load(std::memory_order_relaxed);
    s.bad_chains += bad_chains_.load(std::memory_order_relaxed);
    s.in_flight += in_flight_.load(std::memory_order_relaxed);
    s.queues_broken += broken_.load(std::memory_order_relaxed) ? 1 : 0;
    s.latency_ns.merge(latency_.snapshot());
  }

 private:
  struct Slot {
    uint16_t head = 0;
    BlkRequest request;
    uint64_t start_ns = 0;
    bool flush_pending = false;  // write-through: a flush follows this write
  };

  // Pops and starts requests while slots are free. Runs on the worker thread.
  void process_available() {
    if (broken_.load(std::memory_order_relaxed)) return;
    SplitQueue& q = queue_.queue;
    q.disable_notification();
    for (;;) {
      if (free_.empty()) {
        // Every slot is at the backend: leave notifications off; completions call us again.
        blocked_ = true;
        break;
      }
      auto popped = q.pop();
      if (!popped) {
        spdlog::warn("{}: {}; device needs reset", name_, to_string(popped.error()));
        broken_.store(true, std::memory_order_relaxed);
        interrupt_->set_needs_reset();
        backend_->unplug();  // what was popped before the ring broke still runs
        return;
      }
      if (!popped->has_value()) {
        if (q.enable_notification()) continue;  // raced with the driver: pop again
        break;
      }
      const ChainResult& chain = **popped;
      if (!chain) {
        bad_chains_.fetch_add(1, std::memory_order_relaxed);
        guest_warning("malformed descriptor chain (head {}): {}", chain.error().head,
                      to_string(chain.error().kind));
        q.add_used(chain.error().head, 0);
        used_since_notify_ = true;
        continue;
      }
      start_request(*chain);
    }
    backend_->unplug();  // everything popped in this pass goes to the backend together
    notify_if_needed();
  }

  void start_request(const DescriptorChain& chain) {
    const uint16_t slot_index = free_.back();
    Slot& slot = slots_[slot_index];
    slot.head = chain.head;
    if (auto parsed = parse_blk_request(memory_, chain, limits_, slot.request); !parsed) {
      errors_.fetch_add(1, std::memory_order_relaxed);
      guest_warning("request (head {}) refused: {}", chain.head, parsed.error().reason);
      uint32_t used = 0;
      if (parsed.error().status != nullptr) {
        *parsed.error().status = parsed.error().code;  // SAFETY: guest RAM, see BlkRequest
        used = 1;
      }
      queue_.queue.add_used(chain.head, used);
      used_since_notify_ = true;
      return;
    }
    BlkRequest& req = slot.request;
    ops_[static_cast<size_t>(req.op)].fetch_add(1, std::memory_order_relaxed);
    if (req.op == BlkOp::kGetId) {
      fill_serial(req);
      finish_now(chain.head, req, kStatusOk);
      return;
    }
    if (req.op != BlkOp::kFlush && req.length == 0) {
      // Nothing to move or zero: done (backends refuse empty ranges).
      finish_now(chain.head, req, kStatusOk);
      return;
    }
    free_.pop_back();
    slot.start_ns = now_ns();
    slot.flush_pending = write_through_ && req.op == BlkOp::kWrite;
    blockdev::IoRequest io{io_kind(req.op), req.offset, req.length, req.iov, slot_index,
                           req.unmap};
    if (Status submitted = backend_->submit(io); !submitted) {
      spdlog::warn("{}: {} at offset {} length {} not submitted: {}", name_, to_string(req.op),
                   req.offset, req.length, submitted.error().message());
      errors_.fetch_add(1, std::memory_order_relaxed);
      free_.push_back(slot_index);
      finish_now(chain.head, req, kStatusIoErr);
      return;
    }
    in_flight_.fetch_add(1, std::memory_order_relaxed);
  }

  void process_completions() {
    completions_.clear();
    backend_->reap(completions_);
    for (const blockdev::Completion& c : completions_) {
      const auto slot_index = static_cast<uint16_t>(c.cookie);
      Slot& slot = slots_[slot_index];
      if (c.result == 0 && slot.flush_pending) {
        slot.flush_pending = false;
        blockdev::IoRequest flush{IoKind::kFlush, 0, 0, {}, slot_index, false};
        if (backend_->submit(flush)) continue;  // completes later, as this request
        complete(slot_index, -EIO);
        continue;
      }
      complete(slot_index, c.result);
    }
    backend_->unplug();  // write-through flushes
    if (blocked_ && !free_.empty() && !draining_) {
      blocked_ = false;
      process_available();  // also notifies
      return;
    }
    notify_if_needed();
  }

  void complete(uint16_t slot_index, int32_t result) {
    Slot& slot = slots_[slot_index];
    BlkRequest& req = slot.request;
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
    latency_.record(now_ns() - slot.start_ns);
    uint8_t status = kStatusOk;
    if (result != 0) {
      status = kStatusIoErr;
      errors_.fetch_add(1, std::memory_order_relaxed);
      // The backend logged the reason with image and offset; the guest sees EIO.
    } else if (req.op == BlkOp::kRead) {
      read_bytes_.fetch_add(req.length, std::memory_order_relaxed);
    } else if (req.op == BlkOp::kWrite) {
      write_bytes_.fetch_add(req.length, std::memory_order_relaxed);
    }
    finish_now(slot.head, req, status);
    free_.push_back(slot_index);
  }

  void release(uint16_t slot_index) {
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
    free_.push_back(slot_index);
  }

  // Writes the status byte and returns the chain to the driver (no interrupt yet).
  void finish_now(uint16_t head, BlkRequest& req, uint8_t status) {
    *req.status = status;  // SAFETY: guest RAM (BlkRequest::status)
    queue_.queue.add_used(head, status == kStatusOk ? req.used_len_ok : 1);
    used_since_notify_ = true;
  }

  void fill_serial(const BlkRequest& req) {
    const std::string& serial = serial_;
    size_t done = 0;
    for (const iovec& v : req.iov) {
      auto* dst = static_cast<uint8_t*>(v.iov_base);  // SAFETY: guest RAM view from slice()
      for (size_t i = 0; i < v.iov_len; ++i, ++done) {
        dst[i] = done < serial.size() ? static_cast<uint8_t>(serial[done]) : 0;
      }
    }
  }

  void notify_if_needed() {
    if (!used_since_notify_) return;
    used_since_notify_ = false;
    if (queue_.queue.needs_notification()) interrupt_->notify_queue(queue_.index);
  }

  template <typename... Args>
  void guest_warning(fmt::format_string<Args...> format, Args&&... args) {
    if (warnings_ >= kMaxGuestWarnings) return;
    if (++warnings_ == kMaxGuestWarnings) {
      spdlog::warn("{}: further guest request errors on this queue are only counted", name_);
      return;
    }
    spdlog::warn("{}: {}", name_, fmt::format(format, std::forward<Args>(args)...));
  }

  const std::string name_;
  const std::string serial_;  // GET_ID
  const GuestMemory& memory_;
  ActiveQueue queue_;
  const std::shared_ptr<VirtioInterrupt> interrupt_;
  const std::unique_ptr<blockdev::BackendQueue> backend_;
  const BlkLimits limits_;
  const bool write_through_;

  std::unique_ptr<EventLoop> loop_;
  std::jthread thread_;

  // Worker-thread state.
  std::vector<Slot> slots_;
  std::vector<uint16_t> free_;
  std::vector<blockdev::Completion> completions_;
  bool blocked_ = false;
  bool draining_ = false;  // pause/reset: complete what is in flight, pop nothing new
  bool used_since_notify_ = false;
  uint32_t warnings_ = 0;

  // Statistics: written by the worker, read by stats() on any thread.
  std::array<std::atomic<uint64_t>, kOpKinds> ops_{};
  std::atomic<uint64_t> read_bytes_{0}, write_bytes_{0}, errors_{0}, bad_chains_{0};
  std::atomic<uint64_t> in_flight_{0};
  std::atomic<bool> broken_{false};
  LatencyHistogram latency_;
};

VirtioBlk::VirtioBlk(BlkDeviceConfig config, std::shared_ptr<blockdev::Backend> backend)
    : config_(std::move(config)), backend_(std::move(backend)), config_space_(config::kSize, 0) {
  const blockdev::BackendInfo& info = backend_->info();
  const uint32_t lbs = info.logical_block_size;
  store_le64(config_space_.data() + config::kCapacity, info.size / kSectorSize);
  store_le32(config_space_.data() + config::kSizeMax, kSizeMax);
  // Header and status take two descriptors of a chain no longer than the queue (2.7.5.2).
  const auto seg_max = static_cast<uint32_t>(
      std::min<size_t>(config_.queue_size - 2, info.max_segments));
  store_le32(config_space_.data() + config::kSegMax, seg_max);
  store_le32(config_space_.data() + config::kBlkSize, lbs);
  const uint32_t pbs = std::max(info.physical_block_size, lbs);
  config_space_[config::kPhysicalBlockExp] = static_cast<uint8_t>(std::countr_zero(pbs / lbs));
  config_space_[config::kAlignmentOffset] = 0;
  store_le16(config_space_.data() + config::kMinIoSize, 1);
  store_le32(config_space_.data() + config::kOptIoSize, info.optimal_io_size / lbs);
  config_space_[config::kWriteback] = 1;  // only meaningful with CONFIG_WCE (not offered)
  store_le16(config_space_.data() + config::kNumQueues, config_.num_queues);
  if (info.discard_granularity > 0) {
    store_le32(config_space_.data() + config::kMaxDiscardSectors, kMaxRangeSectors);
    store_le32(config_space_.data() + config::kMaxDiscardSeg, choice::kMaxRangeSegments);
    store_le32(config_space_.data() + config::kDiscardSectorAlignment,
               std::max<uint32_t>(1, info.discard_granularity / kSectorSize));
  }
  if (info.write_zeroes) {
    store_le32(config_space_.data() + config::kMaxWriteZeroesSectors, kMaxRangeSectors);
    store_le32(config_space_.data() + config::kMaxWriteZeroesSeg, choice::kMaxRangeSegments);
    config_space_[config::kWriteZeroesMayUnmap] = info.discard_zeroes ? 1 : 0;
  }
}

VirtioBlk::~VirtioBlk() { reset(); }

uint32_t VirtioBlk::device_type() const { return kDeviceTypeBlock; }

uint64_t VirtioBlk::device_features() const {
  const blockdev::BackendInfo& info = backend_->info();
  uint64_t f = kRingFeatures | kFeatureSizeMax | kFeatureSegMax | kFeatureBlkSize |
               kFeatureTopology | kFeatureFlush | kFeatureMq;
  if (info.read_only) {
    f |= kFeatureRo;
  } else {
    if (info.discard_granularity > 0) f |= kFeatureDiscard;
    if (info.write_zeroes) f |= kFeatureWriteZeroes;
  }
  return f;
}

std::vector<uint16_t> VirtioBlk::queue_max_sizes() const {
  return std::vector<uint16_t>(config_.num_queues, config_.queue_size);
}

uint32_t VirtioBlk::config_size() const { return static_cast<uint32_t>(config_space_.size()); }

void VirtioBlk::read_config(uint64_t offset, std::span<uint8_t> data) {
  for (size_t i = 0; i < data.size(); ++i) {
    const uint64_t at = offset + i;
    data[i] = at < config_space_.size() ? config_space_[at] : 0;
  }
}

Status VirtioBlk::activate(ActivationContext context) {
  std::lock_guard lock(mu_);
  if (!workers_.empty()) {
    return fail(EBUSY, config_.name + ": already active");
  }
  if (context.memory == nullptr || !context.interrupt || context.queues.empty()) {
    return fail(EINVAL, config_.name + ": no request queue enabled");
  }
  const blockdev::BackendInfo& info = backend_->info();
  BlkLimits limits;
  limits.capacity_bytes = info.size;
  limits.read_only = info.read_only;
  limits.discard = (context.features & kFeatureDiscard) != 0;
  limits.write_zeroes = (context.features & kFeatureWriteZeroes) != 0;
  limits.max_discard_sectors = kMaxRangeSectors;
  limits.max_write_zeroes_sectors = kMaxRangeSectors;
  limits.max_segments = info.max_segments;
  const bool write_through = (context.features & kFeatureFlush) == 0;
  if (write_through) {
    spdlog::info("{}: driver did not accept FLUSH: writes are flushed before they complete",
                 config_.name);
  }
  std::vector<std::unique_ptr<Worker>> workers;
  for (ActiveQueue& q : context.queues) {
    if (!q.notifier) return fail(EINVAL, config_.name + ": queue without notifier");
    auto bq = backend_->open_queue(q.queue.size());
    if (!bq) return fail(bq.error().wrap(config_.name));
    const std::string name = config_.name + "-q" + std::to_string(q.index);
    workers.push_back(std::make_unique<Worker>(name, config_.serial, *context.memory, std::move(q),
                                               context.interrupt, std::move(*bq), limits,
                                               write_through));
  }
  for (auto& w : workers) {
    if (Status started = w->start(); !started) {
      for (auto& s : workers) s->stop();
      return started;
    }
  }
  workers_ = std::move(workers);
  features_ = context.features;
  paused_ = false;
  return {};
}

void VirtioBlk::stop_workers_locked(bool complete_in_flight) {
  for (auto& w : workers_) w->stop();
  for (auto& w : workers_) w->drain(complete_in_flight);
}

void VirtioBlk::reset() {
  std::lock_guard lock(mu_);
  stop_workers_locked(false);
  for (auto& w : workers_) w->add_stats(retired_);
  retired_.in_flight = 0;
  workers_.clear();
  paused_ = false;
}

Status VirtioBlk::pause() {
  std::lock_guard lock(mu_);
  if (paused_) return {};
  stop_workers_locked(true);
  paused_ = true;
  return {};
}

Status VirtioBlk::resume() {
  std::lock_guard lock(mu_);
  if (!paused_) return {};
  paused_ = false;
  for (auto& w : workers_) HCN_TRY_STATUS(w->start());
  return {};
}

Result<std::vector<uint8_t>> VirtioBlk::save_state() const {
  std::lock_guard lock(mu_);
  if (!workers_.empty() && !paused_) {
    return fail(EBUSY, config_.name + ": pause the device before saving its state");
  }
  // Version 1: JSON, so that a newer VMM can still read an older one's state. The disk itself
  // is not part of it: source and destination open the same image.
  nlohmann::json queues = nlohmann::json::array();
  for (const auto& w : workers_) {
    const SplitQueueState q = w->queue_state();
    queues.push_back({{"index", w->index()}, {"size", q.size}, {"desc", q.desc},
                      {"avail", q.avail}, {"used", q.used}, {"next_avail", q.next_avail},
                      {"next_used", q.next_used}, {"event_idx", q.event_idx_enabled},
                      {"indirect", q.indirect_enabled}, {"signalled_used", q.signalled_used},
                      {"signalled_used_valid", q.signalled_used_valid}});
  }
  const nlohmann::json state{{"version", 1},
                             {"device", "virtio-blk"},
                             {"name", config_.name},
                             {"active", !workers_.empty()},
                             {"features", features_},
                             {"queues", queues}};
  const std::string text = state.dump();
  return std::vector<uint8_t>(text.begin(), text.end());
}

BlkStats VirtioBlk::stats() const {
  std::lock_guard lock(mu_);
  BlkStats s = retired_;
  for (const auto& w : workers_) w->add_stats(s);
  return s;
}

}  // namespace hcnode::compute::virtio
