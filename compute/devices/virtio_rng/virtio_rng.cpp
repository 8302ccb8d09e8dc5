#include "compute/devices/virtio_rng/virtio_rng.hpp"

#include <sys/epoll.h>
#include <sys/random.h>

#include <spdlog/spdlog.h>

#include "compute/virtio/device_thread.hpp"
#include "compute/virtio/constants.hpp"

namespace hcnode::compute::virtio {

Result<size_t> VirtioRng::host_random(std::span<uint8_t> out) {
  for (;;) {
    const ssize_t n = ::getrandom(out.data(), out.size(), 0);
    if (n >= 0) {
      return static_cast<size_t>(n);
    }
    if (errno != EINTR) {
      return fail(from_errno("getrandom"));
    }
  }
}

VirtioRng::VirtioRng(std::string name, EntropySource source)
    : name_(std::move(name)), source_(std::move(source)) {}

VirtioRng::~VirtioRng() { reset(); }

uint32_t VirtioRng::device_type() const { return kDeviceTypeEntropy; }

uint64_t VirtioRng::device_features() const { return kFeatureVersion1; }

Status VirtioRng::activate(ActivationContext context) {
  std::lock_guard lock(mu_);
  if (active_) {
    return fail(EBUSY, name_ + ": already active");
  }
  if (context.memory == nullptr || !context.interrupt) {
    return fail(EINVAL, name_ + ": incomplete activation context");
  }
  // 5.4.2: one queue, requestq (index 0).
  if (context.queues.size() != 1 || context.queues[0].index != 0 || !context.queues[0].notifier) {
    return fail(EINVAL, name_ + ": the request queue (0) must be enabled");
  }
  active_.emplace(Active{context.memory, std::move(context.queues[0]),
                         std::move(context.interrupt)});
  paused_ = false;
  if (Status started = start_worker_locked(); !started) {
    active_.reset();
    return started;
  }
  return {};
}

void VirtioRng::reset() {
  std::lock_guard lock(mu_);
  stop_worker_locked();
  active_.reset();
  paused_ = false;
}

Status VirtioRng::pause() {
  // Requests are served synchronously on the worker, so once it has stopped nothing is in
  // flight: every popped chain is already in the used ring.
  std::lock_guard lock(mu_);
  stop_worker_locked();
  paused_ = true;
  return {};
}

Status VirtioRng::resume() {
  std::lock_guard lock(mu_);
  if (!paused_) {
    return {};
  }
  paused_ = false;
  return active_ ? start_worker_locked() : Status{};
}

Status VirtioRng::start_worker_locked() {
  auto loop = HCN_TRY(EventLoop::create(name_));
  const auto& notifier = active_->queue.notifier;
  HCN_TRY_STATUS(loop->add(notifier->fd(), EPOLLIN, [this, notifier](uint32_t) {
    (void)notifier->consume();
    process_queue();
  }));
  // Buffers the driver made available before activation (or while paused) are served at once.
  loop->post([this] { process_queue(); });
  loop_ = std::move(loop);
  worker_ = spawn_device_thread(name_, *loop_, active_->interrupt);
  return {};
}

void VirtioRng::stop_worker_locked() {
  if (loop_) {
    loop_->stop();
  }
  if (worker_.joinable()) {
    worker_.join();
  }
  loop_.reset();
}

void VirtioRng::process_queue() {
  Active& a = *active_;
  if (a.broken) {
    return;
  }
  SplitQueue& queue = a.queue.queue;
  bool used_any = false;
  do {
    queue.disable_notification();
    for (;;) {
      auto popped = queue.pop();
      if (!popped) {
        spdlog::warn("{}: {}; device needs reset", name_, to_string(popped.error()));
        a.broken = true;
        a.interrupt->set_needs_reset();
        return;
      }
      if (!popped->has_value()) {
        break;
      }
      const ChainResult& chain = **popped;
      uint32_t written = 0;
      uint16_t head = 0;
      if (chain) {
        head = chain->head;
        written = fill(*chain);
      } else {
        // A malformed chain still goes back to the driver, empty, so it does not leak.
        head = chain.error().head;
        bad_chains_.fetch_add(1, std::memory_order_relaxed);
      }
      queue.add_used(head, written);
      used_any = true;
    }
  } while (queue.enable_notification());
  if (used_any && queue.needs_notification()) {
    a.interrupt->notify_queue(a.queue.index);
  }
}

uint32_t VirtioRng::fill(const DescriptorChain& chain) {
  uint32_t written = 0;
  for (const Buffer& buffer : chain.writable()) {
    const uint32_t want = std::min(buffer.len, kMaxBytesPerRequest - written);
    if (want == 0) {
      break;
    }
    // The walker checked the range; slice() again gives the host view (and re-checks).
    auto host = active_->memory->slice(buffer.gpa, want);
    if (!host) {
      break;
    }
    auto got = source_(*host);
    if (!got) {
      spdlog::warn("{}: entropy source failed: {}", name_, got.error().message());
      break;
    }
    written += static_cast<uint32_t>(std::min<size_t>(*got, want));
    if (*got < want) {
      break;  // used len must cover only bytes actually written (2.7.8)
    }
  }
  bytes_served_.fetch_add(written, std::memory_order_relaxed);
  return written;
}

}  // namespace hcnode::compute::virtio
