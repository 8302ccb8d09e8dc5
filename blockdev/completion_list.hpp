// CompletionList: where library callbacks (librbd's finisher thread, gfapi's event threads, a
// test's fake) drop finished requests for the queue's worker to reap. A mutex-guarded vector
// plus an eventfd: callbacks push and signal, the worker swaps the vector out — one lock per
// batch, not per request, and the callback never waits on the worker.
//
// Thread-safety: push() from any thread; reap() and the counters' readers on the owner thread;
// wait_idle() blocks the owner until every started request has been pushed.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include <sys/eventfd.h>

#include "base/event_fd.hpp"
#include "base/result.hpp"
#include "blockdev/backend.hpp"

namespace hcnode::blockdev {

class CompletionList {
 public:
  static Result<std::unique_ptr<CompletionList>> create() {
    auto efd = HCN_TRY(EventFd::create(EFD_NONBLOCK));
    return std::unique_ptr<CompletionList>(new CompletionList(std::move(efd)));
  }

  int fd() const { return event_.fd(); }

  // The owner announces a request before handing it to the library (so that a callback that
  // runs before the library call returns still finds it counted).
  void started() {
    std::lock_guard lock(mu_);
    ++in_flight_;
  }
  // The library refused the request after started(): no completion will come.
  void cancelled() {
    std::lock_guard lock(mu_);
    --in_flight_;
    if (in_flight_ == 0) idle_.notify_all();
  }

  // From the library's callback thread.
  // Everything happens under mu_, the eventfd write included: the moment in_flight_ reaches 0
  // the owner's wait_idle() may return and the owner may destroy this list, so the callback
  // must not touch any member after it releases mu_ (signalling after the unlock raced with
  // the queue's destructor).
  // The eventfd is written only when the list goes from empty to non-empty: reap() consumes it
  // before it takes the list, so completions pushed meanwhile are taken by that same reap, and
  // the next push after it signals again. One write per batch instead of one per request.
  void push(Completion c) {
    std::lock_guard lock(mu_);
    ready_.push_back(c);
    if (ready_.size() == 1) (void)event_.signal();
    --in_flight_;
    if (in_flight_ == 0) idle_.notify_all();
  }

  size_t reap(std::vector<Completion>& out) {
    (void)event_.consume();
    std::lock_guard lock(mu_);
    const size_t n = ready_.size();
    out.insert(out.end(), ready_.begin(), ready_.end());
    ready_.clear();
    return n;
  }

  void wait_idle() {
    std::unique_lock lock(mu_);
    idle_.wait(lock, [this] { return in_flight_ == 0; });
  }

  size_t in_flight() const {
    std::lock_guard lock(mu_);
    return in_flight_;
  }

 private:
  explicit CompletionList(EventFd event) : event_(std::move(event)) {}

  EventFd event_;
  mutable std::mutex mu_;
  std::condition_variable idle_;
  std::vector<Completion> ready_;  // guarded by mu_
  size_t in_flight_ = 0;           // guarded by mu_
};

}  // namespace hcnode::blockdev
