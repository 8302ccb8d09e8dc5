#include "base/thread.hpp"

#include <signal.h>

#include <atomic>
#include <stdexcept>

#include <catch2/catch.hpp>

using namespace hcnode;

TEST_CASE("spawn_named_thread names the thread (truncated to 15 bytes)", "[base][thread]") {
  std::string seen;
  auto t = spawn_named_thread("blk0-q1", [&](std::stop_token) { seen = current_thread_name(); });
  t.join();
  CHECK(seen == "blk0-q1");
  auto u = spawn_named_thread("a-very-long-thread-name", [&](std::stop_token) { seen = current_thread_name(); });
  u.join();
  CHECK(seen == "a-very-long-thr");
}

TEST_CASE("spawn_named_thread blocks asynchronous signals in the new thread", "[base][thread]") {
  bool term_blocked = false;
  auto t = spawn_named_thread("sigtest", [&](std::stop_token) {
    sigset_t mask;
    pthread_sigmask(SIG_BLOCK, nullptr, &mask);
    term_blocked = sigismember(&mask, SIGTERM) == 1;
  });
  t.join();
  CHECK(term_blocked);
  // ... and leaves the creating thread's mask as it was.
  sigset_t mine;
  pthread_sigmask(SIG_BLOCK, nullptr, &mine);
  CHECK(sigismember(&mine, SIGTERM) == 0);
}

TEST_CASE("spawn_named_thread reports an escaped exception instead of terminating",
          "[base][thread]") {
  std::string failure;
  ThreadOptions options;
  options.on_failure = [&](const std::string& what) { failure = what; };
  auto t = spawn_named_thread("failing", [](std::stop_token) { throw std::runtime_error("boom"); },
                              options);
  t.join();
  CHECK(failure == "thread failing failed: boom");
}

TEST_CASE("spawn_named_thread passes a stop token that jthread requests", "[base][thread]") {
  std::atomic<bool> stopped{false};
  {
    auto t = spawn_named_thread("stopper", [&](std::stop_token stop) {
      while (!stop.stop_requested()) {
        std::this_thread::yield();
      }
      stopped = true;
    });
  }  // ~jthread requests stop and joins
  CHECK(stopped.load());
}
