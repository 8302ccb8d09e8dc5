// EventLoop: an epoll(7) loop owned by exactly one thread.
//
// Used by data-plane workers (one per virtio queue) and the VMM control thread. Handlers run on
// the loop's thread only. The cross-thread entry points are post() and stop(); everything else
// must be called on the loop thread (or before run() starts).
//
//   loop.add(queue_kick.fd(), EPOLLIN, [&](uint32_t) { process_queue(); });
//   loop.add(backend.notifier().fd(), EPOLLIN, [&](uint32_t) { process_completions(); });
//   loop.run();   // until stop()
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/event_fd.hpp"
#include "base/fd.hpp"
#include "base/result.hpp"

namespace hcnode {

class EventLoop {
 public:
  using Handler = std::function<void(uint32_t events)>;

  static Result<std::unique_ptr<EventLoop>> create(std::string name);

  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  const std::string& name() const { return name_; }

  // Registers fd for `events` (EPOLLIN, ...). The loop does not own fd; the caller keeps it
  // open until remove(). One registration per fd.
  Status add(int fd, uint32_t events, Handler handler);
  Status modify(int fd, uint32_t events);
  // Unregisters fd. Safe to call from inside a handler, also for the fd being handled: events
  // of a removed fd that are still in the current batch are dropped.
  Status remove(int fd);

  // Waits up to timeout_ms (-1 = forever) and dispatches ready handlers and posted tasks.
  // Returns the number of handlers and tasks run.
  Result<int> run_once(int timeout_ms);

  // Dispatches until stop() is called. Binds the loop to the calling thread.
  Status run();

  // Thread-safe. Makes run() return after the current dispatch round.
  void stop();

  // Thread-safe. Runs task on the loop thread during the next dispatch round.
  void post(std::function<void()> task);

  // True when called on the thread inside run()/run_once().
  bool is_loop_thread() const { return owner_.load(std::memory_order_relaxed) == std::this_thread::get_id(); }

 private:
  EventLoop(std::string name, Fd epoll, EventFd wake);
  // Runs the posted tasks; returns how many ran.
  size_t drain_posted();

  struct Registration {
    int fd;
    Handler handler;
  };

  std::string name_;
  Fd epoll_;
  EventFd wake_;  // written by stop()/post() from other threads
  // id -> registration; ids are never reused, so a stale event for a removed fd finds nothing.
  std::unordered_map<uint64_t, std::shared_ptr<Registration>> by_id_;
  std::unordered_map<int, uint64_t> id_by_fd_;
  uint64_t next_id_ = 1;

  std::mutex posted_mu_;
  std::vector<std::function<void()>> posted_;  // guarded by posted_mu_
  std::atomic<bool> stop_requested_{false};      // set by any thread, read by the loop thread
  std::atomic<std::thread::id> owner_{};         // for is_loop_thread() assertions
};

}  // namespace hcnode
