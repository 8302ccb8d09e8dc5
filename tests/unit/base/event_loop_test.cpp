#include "base/event_loop.hpp"

#include <sys/eventfd.h>

#include <atomic>
#include <thread>

#include <catch2/catch.hpp>

using namespace hcnode;

TEST_CASE("EventLoop dispatches a ready fd to its handler", "[base][event_loop]") {
  auto loop = EventLoop::create("test").value();
  auto efd = EventFd::create(EFD_NONBLOCK).value();
  int calls = 0;
  REQUIRE(loop->add(efd.fd(), EPOLLIN, [&](uint32_t events) {
                 CHECK((events & EPOLLIN) != 0);
                 (void)efd.consume();
                 ++calls;
               }).has_value());
  CHECK(loop->run_once(0).value() == 0);
  REQUIRE(efd.signal().has_value());
  CHECK(loop->run_once(1000).value() == 1);
  CHECK(calls == 1);
}

TEST_CASE("EventLoop refuses double registration and unknown removal", "[base][event_loop]") {
  auto loop = EventLoop::create("test").value();
  auto efd = EventFd::create(EFD_NONBLOCK).value();
  REQUIRE(loop->add(efd.fd(), EPOLLIN, [](uint32_t) {}).has_value());
  CHECK(loop->add(efd.fd(), EPOLLIN, [](uint32_t) {}).error().code() == EEXIST);
  CHECK(loop->remove(efd.fd() + 1000).error().code() == ENOENT);
  CHECK(loop->remove(efd.fd()).has_value());
}

TEST_CASE("EventLoop drops events of an fd removed earlier in the same batch", "[base][event_loop]") {
  auto loop = EventLoop::create("test").value();
  auto a = EventFd::create(EFD_NONBLOCK).value();
  auto b = EventFd::create(EFD_NONBLOCK).value();
  int a_calls = 0;
  int b_calls = 0;
  // Whichever handler runs first removes the other; exactly one of them must run.
  REQUIRE(loop->add(a.fd(), EPOLLIN, [&](uint32_t) {
                 ++a_calls;
                 (void)loop->remove(b.fd());
               }).has_value());
  REQUIRE(loop->add(b.fd(), EPOLLIN, [&](uint32_t) {
                 ++b_calls;
                 (void)loop->remove(a.fd());
               }).has_value());
  REQUIRE(a.signal().has_value());
  REQUIRE(b.signal().has_value());
  CHECK(loop->run_once(1000).value() == 1);
  CHECK(a_calls + b_calls == 1);
}

TEST_CASE("EventLoop runs posted tasks on the loop thread and stops from another thread",
          "[base][event_loop]") {
  auto loop = EventLoop::create("test").value();
  std::atomic<bool> ran_on_loop{false};
  std::thread::id loop_thread;
  std::thread runner([&] {
    loop_thread = std::this_thread::get_id();
    REQUIRE(loop->run().has_value());
  });
  loop->post([&] { ran_on_loop = loop->is_loop_thread(); });
  // stop() after post(): run() may return only after the task ran, because both wake the same
  // eventfd and posted tasks are drained before the stop flag is checked.
  loop->post([&] { loop->stop(); });
  runner.join();
  CHECK(ran_on_loop.load());
  CHECK_FALSE(loop->is_loop_thread());
}
