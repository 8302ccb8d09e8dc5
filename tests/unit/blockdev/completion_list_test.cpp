#include "blockdev/completion_list.hpp"

#include <poll.h>

#include <algorithm>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

using namespace hcnode;
using namespace hcnode::blockdev;

namespace {
bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0;
}
}  // namespace

TEST_CASE("CompletionList counts in-flight requests and signals its eventfd on push",
          "[blockdev][completion_list]") {
  auto list = CompletionList::create();
  REQUIRE(list.has_value());
  auto& l = **list;
  CHECK(l.in_flight() == 0);
  CHECK_FALSE(readable(l.fd()));

  l.started();
  l.started();
  l.started();
  CHECK(l.in_flight() == 3);
  l.cancelled();  // the library refused one: no completion for it
  CHECK(l.in_flight() == 2);

  l.push({7, 0});
  CHECK(l.in_flight() == 1);
  CHECK(readable(l.fd()));
  std::vector<Completion> out;
  CHECK(l.reap(out) == 1);
  CHECK_FALSE(readable(l.fd()));
  l.push({9, -EIO});
  CHECK(l.in_flight() == 0);
  CHECK(l.reap(out) == 1);
  REQUIRE(out.size() == 2);
  CHECK(out[0].cookie == 7);
  CHECK(out[0].result == 0);
  CHECK(out[1].cookie == 9);
  CHECK(out[1].result == -EIO);
  CHECK(l.reap(out) == 0);
  l.wait_idle();  // returns at once: nothing in flight
}

TEST_CASE("CompletionList collects pushes from many threads and wait_idle waits for all",
          "[blockdev][completion_list]") {
  auto list = CompletionList::create();
  REQUIRE(list.has_value());
  auto& l = **list;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 500;
  for (int i = 0; i < kThreads * kPerThread; ++i) l.started();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&l, t] {
      for (int i = 0; i < kPerThread; ++i) {
        l.push({static_cast<uint64_t>(t * kPerThread + i), 0});
      }
    });
  }
  l.wait_idle();
  CHECK(l.in_flight() == 0);
  std::vector<Completion> out;
  CHECK(l.reap(out) == kThreads * kPerThread);
  std::vector<uint64_t> cookies;
  for (const auto& c : out) cookies.push_back(c.cookie);
  std::sort(cookies.begin(), cookies.end());
  for (size_t i = 0; i < cookies.size(); ++i) REQUIRE(cookies[i] == i);
  for (auto& t : threads) t.join();
}

// The owner destroys the list as soon as wait_idle() returns (a queue's destructor): a push
// must not touch the list after that. ASan reports a use-after-free if it does.
TEST_CASE("CompletionList may be destroyed as soon as wait_idle returns",
          "[blockdev][completion_list]") {
  for (int round = 0; round < 200; ++round) {
    auto list = CompletionList::create();
    REQUIRE(list.has_value());
    CompletionList* raw = list->get();
    constexpr int kThreads = 3;
    for (int i = 0; i < kThreads; ++i) raw->started();
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([raw, t] { raw->push({static_cast<uint64_t>(t), 0}); });
    }
    raw->wait_idle();
    list->reset();
    for (auto& t : threads) t.join();
  }
}
