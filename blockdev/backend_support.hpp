// What every backend implementation shares (not part of the public Backend interface):
// request validation against BackendInfo, and rate-limited logging of failed completions.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "blockdev/backend.hpp"
#include "blockdev/completion_list.hpp"

namespace hcnode::blockdev {

// The checks backend.hpp promises for submit(): EROFS for a modifying request on a read-only
// disk; EOPNOTSUPP for discard / write-zeroes the backend does not offer; EINVAL for a range
// outside [0, size), a zero length, or read/write iovecs that are missing, too many
// (info.max_segments) or do not add up to req.length.
Status check_request(const IoRequest& req, const BackendInfo& info);

// Zeroes the bytes of `iov` from byte `from` on: what a container reads past the end of its
// file (BackendOptions::container).
void zero_iov_from(std::span<const iovec> iov, uint64_t from);

// Failed completions are logged at warn, but a dying disk must not flood the log: at most
// kPerSecond lines per second per queue, then one line saying how many were suppressed.
// Thread-safe: librbd's and gfapi's callbacks log from their own threads.
class FailureLog {
 public:
  static constexpr int kPerSecond = 10;

  explicit FailureLog(std::string disk) : disk_(std::move(disk)) {}

  void failed(IoKind kind, uint64_t offset, uint64_t length, int result);
  // A short transfer turned into -EIO: the one failure without an errno of its own.
  void short_transfer(IoKind kind, uint64_t offset, uint64_t length, int64_t done);

 private:
  bool admit();

  const std::string disk_;
  std::mutex mu_;
  std::chrono::steady_clock::time_point window_{};  // guarded by mu_
  int logged_ = 0;                                  // guarded by mu_
  uint64_t suppressed_ = 0;                         // guarded by mu_
};

// A BackendQueue whose requests complete on a library's own threads (librbd's finisher, gfapi's
// event threads): each request carries a small heap context to its callback, which turns the
// library's return value into a Completion and pushes it onto the queue's CompletionList.
// Implementations (rbd, gluster) write only submit(): begin() -> the library's async call ->
// started() or, if the library refused, cancel().
class CallbackQueue : public BackendQueue {
 public:
  // The callback's context: what it needs to complete and log the request.
  struct Request {
    CallbackQueue* queue;
    uint64_t cookie;
    IoKind kind;
    uint64_t offset;
    uint64_t length;
    // A read of a container (BackendInfo::container): its iovecs, zero-filled past a short
    // read (the end of the file). Empty otherwise.
    std::vector<iovec> zero_tail = {};
  };

  CallbackQueue(std::string uri, std::unique_ptr<CompletionList> list, size_t depth)
      : uri_(std::move(uri)), list_(std::move(list)), depth_(depth), log_(uri_) {}
  // Callbacks touch the list and the log, both members of this class: draining here is enough.
  ~CallbackQueue() override { drain(); }

  int event_fd() const override { return list_->fd(); }
  size_t reap(std::vector<Completion>& out) override { return list_->reap(out); }
  void drain() override { list_->wait_idle(); }
  size_t in_flight() const override { return list_->in_flight(); }
  size_t depth() const override { return depth_; }

  // From the library's callback thread. `ret`: bytes transferred or a negative errno. A read
  // (and, with check_write_length, a write) that moved fewer bytes than asked is an -EIO,
  // except a container's read: it ended at the end of the file, and the rest reads as zeroes.
  static void complete(std::unique_ptr<Request> req, int64_t ret, bool check_write_length);

 protected:
  // Validates the request against `info` and the queue depth, and counts it in flight (before
  // the library sees it: its callback may run before the async call returns).
  Result<std::unique_ptr<Request>> begin(const IoRequest& req, const BackendInfo& info);
  // The library refused the request begin() counted: no callback will come.
  void cancel() { list_->cancelled(); }
  const std::string& uri() const { return uri_; }

 private:
  const std::string uri_;
  const std::unique_ptr<CompletionList> list_;
  const size_t depth_;
  FailureLog log_;
};

}  // namespace hcnode::blockdev
