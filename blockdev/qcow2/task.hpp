// Minimal C++20 coroutines for the qcow2 layer's request state machines.
//
// A qcow2 request is a sequence of dependent I/Os (load an L2 table, copy the backing data,
// write the cluster, update the table), each of which completes later on the queue's worker
// thread. Written as coroutines, each request reads top to bottom; the queue resumes them
// from reap(). Everything here runs on ONE thread (the queue's worker): no atomics, no locks.
//
//   Task<T>  a lazily started child coroutine; `co_await task` runs it and yields its value.
//   Detached a started-and-forgotten root coroutine (one per guest request); frees itself.
//   WaitList coroutines parked until someone calls wake_all() (a table being loaded, a
//            cluster being allocated); woken handles go to a run list, not resumed inline.
#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <utility>
#include <vector>

namespace hcnode::blockdev::qcow2 {

template <typename T>
class Task {
 public:
  struct promise_type {
    std::optional<T> value;
    std::coroutine_handle<> continuation;

    Task get_return_object() {
      return Task(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    struct FinalAwaiter {
      bool await_ready() noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        return h.promise().continuation;  // symmetric transfer back to the awaiting parent
      }
      void await_resume() noexcept {}
    };
    FinalAwaiter final_suspend() noexcept { return {}; }
    template <typename U>
    void return_value(U&& v) {
      value.emplace(std::forward<U>(v));
    }
    void unhandled_exception() { std::terminate(); }  // data path: no exceptions
  };

  Task(Task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  Task& operator=(Task&&) = delete;
  Task(const Task&) = delete;
  ~Task() {
    if (h_) h_.destroy();
  }

  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> parent) noexcept {
    h_.promise().continuation = parent;
    return h_;  // start the child now
  }
  T await_resume() { return std::move(*h_.promise().value); }

 private:
  explicit Task(std::coroutine_handle<promise_type> h) : h_(h) {}
  std::coroutine_handle<promise_type> h_;
};

// A root coroutine: starts at once, destroys its frame when it returns.
struct Detached {
  struct promise_type {
    Detached get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() { std::terminate(); }
  };
};

// Handles ready to resume; the owner drains it from a loop (never recursively).
using RunList = std::vector<std::coroutine_handle<>>;

class WaitList {
 public:
  struct Awaiter {
    WaitList& list;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) { list.waiting_.push_back(h); }
    void await_resume() const noexcept {}
  };
  // co_await list.wait(): parks the caller until wake_all().
  Awaiter wait() { return Awaiter{*this}; }
  void wake_all(RunList& run) {
    for (auto h : waiting_) run.push_back(h);
    waiting_.clear();
  }
  bool empty() const { return waiting_.empty(); }

 private:
  std::vector<std::coroutine_handle<>> waiting_;
};

}  // namespace hcnode::blockdev::qcow2
