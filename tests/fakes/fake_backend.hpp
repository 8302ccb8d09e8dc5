// FakeBackend: an in-memory blockdev::Backend for unit tests of the virtio-blk device (never
// used outside tests). Requests are executed at submit() against a byte vector; their
// completions are released either at once or when the test says so (hold_completions), so
// tests can control ordering, keep requests in flight, and inject errors.
//
// Thread-safety: the backend's state is guarded by one mutex; queues follow the BackendQueue
// contract (one owner thread), completions are pushed through a CompletionList.
#pragma once

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <vector>

#include "blockdev/backend.hpp"
#include "blockdev/completion_list.hpp"

namespace hcnode::testing {

class FakeBackend final : public blockdev::Backend,
                          public std::enable_shared_from_this<FakeBackend> {
 public:
  struct Record {
    blockdev::IoKind kind;
    uint64_t offset;
    uint64_t length;
  };

  explicit FakeBackend(uint64_t size, bool read_only = false) : data_(size, 0) {
    info_.size = size;
    info_.read_only = read_only;
    info_.discard_granularity = 4096;
    info_.write_zeroes = true;
    info_.discard_zeroes = true;
    info_.optimal_io_size = 1 << 20;
    info_.kind = "memory";
  }

  const blockdev::BackendInfo& info() const override { return info_; }
  std::string uri() const override { return "memory:"; }

  Result<std::unique_ptr<blockdev::BackendQueue>> open_queue(size_t depth) override;

  // Test controls.
  void hold_completions(bool hold) {
    std::lock_guard lock(mu_);
    hold_ = hold;
  }
  void fail_next(int errno_value) {
    std::lock_guard lock(mu_);
    fail_next_ = errno_value;
  }
  // Releases held completions (in submission order, or reversed).
  void release_held(bool reversed = false);
  std::vector<uint8_t> bytes(uint64_t offset, uint64_t len) const {
    std::lock_guard lock(mu_);
    return {data_.begin() + static_cast<ptrdiff_t>(offset),
            data_.begin() + static_cast<ptrdiff_t>(offset + len)};
  }
  void fill(uint64_t offset, const std::vector<uint8_t>& bytes) {
    std::lock_guard lock(mu_);
    std::copy(bytes.begin(), bytes.end(), data_.begin() + static_cast<ptrdiff_t>(offset));
  }
  std::vector<Record> log() const {
    std::lock_guard lock(mu_);
    return log_;
  }
  size_t held() const {
    std::lock_guard lock(mu_);
    return held_.size();
  }

 private:
  friend class FakeQueue;
  struct Held {
    blockdev::CompletionList* list;
    blockdev::Completion completion;
  };

  int execute(const blockdev::IoRequest& req);

  mutable std::mutex mu_;
  blockdev::BackendInfo info_;
  std::vector<uint8_t> data_;
  std::vector<Record> log_;
  std::deque<Held> held_;
  bool hold_ = false;
  int fail_next_ = 0;
};

class FakeQueue final : public blockdev::BackendQueue {
 public:
  FakeQueue(std::shared_ptr<FakeBackend> backend, std::unique_ptr<blockdev::CompletionList> list,
            size_t depth)
      : backend_(std::move(backend)), list_(std::move(list)), depth_(depth) {}
  ~FakeQueue() override { drain(); }

  Status submit(const blockdev::IoRequest& req) override {
    if (backend_->info_.read_only && req.kind != blockdev::IoKind::kRead &&
        req.kind != blockdev::IoKind::kFlush) {
      return fail(EROFS, "fake: read-only");
    }
    if (list_->in_flight() >= depth_) return fail(EAGAIN, "fake: queue full");
    list_->started();
    const int result = backend_->execute(req);
    std::lock_guard lock(backend_->mu_);
    if (backend_->hold_) {
      backend_->held_.push_back({list_.get(), {req.cookie, result}});
    } else {
      list_->push({req.cookie, result});
    }
    return {};
  }
  int event_fd() const override { return list_->fd(); }
  size_t reap(std::vector<blockdev::Completion>& out) override { return list_->reap(out); }
  void drain() override { list_->wait_idle(); }
  size_t in_flight() const override { return list_->in_flight(); }
  size_t depth() const override { return depth_; }

 private:
  std::shared_ptr<FakeBackend> backend_;
  std::unique_ptr<blockdev::CompletionList> list_;
  size_t depth_;
};

inline Result<std::unique_ptr<blockdev::BackendQueue>> FakeBackend::open_queue(size_t depth) {
  auto list = HCN_TRY(blockdev::CompletionList::create());
  return std::unique_ptr<blockdev::BackendQueue>(
      new FakeQueue(shared_from_this(), std::move(list), depth));
}

inline void FakeBackend::release_held(bool reversed) {
  std::deque<Held> held;
  {
    std::lock_guard lock(mu_);
    held.swap(held_);
  }
  if (reversed) std::reverse(held.begin(), held.end());
  for (const Held& h : held) h.list->push(h.completion);
}

inline int FakeBackend::execute(const blockdev::IoRequest& req) {
  std::lock_guard lock(mu_);
  log_.push_back({req.kind, req.offset, req.length});
  if (fail_next_ != 0) {
    return -std::exchange(fail_next_, 0);
  }
  if (req.kind != blockdev::IoKind::kFlush &&
      (req.offset > data_.size() || req.length > data_.size() - req.offset)) {
    return -EINVAL;
  }
  uint64_t at = req.offset;
  switch (req.kind) {
    case blockdev::IoKind::kRead:
      for (const iovec& v : req.iov) {
        std::memcpy(v.iov_base, data_.data() + at, v.iov_len);
        at += v.iov_len;
      }
      break;
    case blockdev::IoKind::kWrite:
      for (const iovec& v : req.iov) {
        std::memcpy(data_.data() + at, v.iov_base, v.iov_len);
        at += v.iov_len;
      }
      break;
    case blockdev::IoKind::kDiscard:
    case blockdev::IoKind::kWriteZeroes:
      std::fill_n(data_.begin() + static_cast<ptrdiff_t>(req.offset), req.length, 0);
      break;
    case blockdev::IoKind::kFlush:
      break;
  }
  return 0;
}

}  // namespace hcnode::testing
