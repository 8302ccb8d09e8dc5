#include "base/event_loop.hpp"

#include <sys/eventfd.h>

#include <array>

namespace hcnode {
namespace {
// epoll data of the loop's own wake-up eventfd; registration ids start at 1.
constexpr uint64_t kWakeId = 0;
}  // namespace

Result<std::unique_ptr<EventLoop>> EventLoop::create(std::string name) {
  int efd = ::epoll_create1(EPOLL_CLOEXEC);
  if (efd < 0) {
    return fail(from_errno("epoll_create1"));
  }
  Fd epoll(efd);
  EventFd wake = HCN_TRY(EventFd::create(EFD_NONBLOCK));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeId;
  if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, wake.fd(), &ev) < 0) {
    return fail(from_errno("epoll_ctl add wake eventfd"));
  }
  return std::unique_ptr<EventLoop>(new EventLoop(std::move(name), std::move(epoll), std::move(wake)));
}

EventLoop::EventLoop(std::string name, Fd epoll, EventFd wake)
    : name_(std::move(name)), epoll_(std::move(epoll)), wake_(std::move(wake)) {}

Status EventLoop::add(int fd, uint32_t events, Handler handler) {
  if (id_by_fd_.contains(fd)) {
    return fail(EEXIST, "event loop " + name_ + ": fd " + std::to_string(fd) + " already registered");
  }
  const uint64_t id = next_id_++;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = id;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) < 0) {
    return fail(from_errno("epoll_ctl add fd " + std::to_string(fd)));
  }
  by_id_.emplace(id, std::make_shared<Registration>(Registration{fd, std::move(handler)}));
  id_by_fd_.emplace(fd, id);
  return {};
}

Status EventLoop::modify(int fd, uint32_t events) {
  auto it = id_by_fd_.find(fd);
  if (it == id_by_fd_.end()) {
    return fail(ENOENT, "event loop " + name_ + ": fd " + std::to_string(fd) + " not registered");
  }
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = it->second;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev) < 0) {
    return fail(from_errno("epoll_ctl mod fd " + std::to_string(fd)));
  }
  return {};
}

Status EventLoop::remove(int fd) {
  auto it = id_by_fd_.find(fd);
  if (it == id_by_fd_.end()) {
    return fail(ENOENT, "event loop " + name_ + ": fd " + std::to_string(fd) + " not registered");
  }
  by_id_.erase(it->second);
  id_by_fd_.erase(it);
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr) < 0) {
    return fail(from_errno("epoll_ctl del fd " + std::to_string(fd)));
  }
  return {};
}

void EventLoop::stop() {
  stop_requested_.store(true, std::memory_order_release);
  (void)wake_.signal();  // cannot fail short of counter overflow
}

void EventLoop::post(std::function<void()> task) {
  {
    std::lock_guard lock(posted_mu_);
    posted_.push_back(std::move(task));
  }
  (void)wake_.signal();
}

size_t EventLoop::drain_posted() {
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard lock(posted_mu_);
    tasks.swap(posted_);
  }
  for (auto& task : tasks) {
    task();
  }
  return tasks.size();
}

Result<int> EventLoop::run_once(int timeout_ms) {
  owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  std::array<epoll_event, 32> events;
  int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), timeout_ms);
  if (n < 0) {
    if (errno == EINTR) {
      return 0;
    }
    return fail(from_errno("epoll_wait " + name_));
  }
  int dispatched = 0;
  for (int i = 0; i < n; ++i) {
    const uint64_t id = events[i].data.u64;
    if (id == kWakeId) {
      (void)wake_.consume();
      dispatched += static_cast<int>(drain_posted());
      continue;
    }
    auto it = by_id_.find(id);
    if (it == by_id_.end()) {
      continue;  // removed earlier in this batch
    }
    // Hold a reference: the handler may remove its own registration.
    std::shared_ptr<Registration> reg = it->second;
    reg->handler(events[i].events);
    ++dispatched;
  }
  return dispatched;
}

Status EventLoop::run() {
  while (!stop_requested_.load(std::memory_order_acquire)) {
    HCN_TRY(run_once(-1));
  }
  stop_requested_.store(false, std::memory_order_relaxed);
  return {};
}

}  // namespace hcnode
