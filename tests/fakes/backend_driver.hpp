// Driving a blockdev::BackendQueue from a test thread: submit, then wait for completions the
// way a device worker does (unplug, poll the queue's eventfd, reap). Catch2 assertions inside.
#pragma once

#include <poll.h>

#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "blockdev/backend.hpp"

namespace hcnode::testing {

// Waits until `n` completions have arrived (each poll bounded by 10 s).
inline std::vector<blockdev::Completion> wait_for(blockdev::BackendQueue& q, size_t n) {
  q.unplug();  // submissions may be held until here (BackendQueue::unplug)
  std::vector<blockdev::Completion> out;
  for (int spins = 0; out.size() < n && spins < 2000; ++spins) {
    pollfd p{q.event_fd(), POLLIN, 0};
    REQUIRE(::poll(&p, 1, 10000) >= 0);
    q.reap(out);
  }
  REQUIRE(out.size() == n);
  return out;
}

// Submits one request and returns its completion's result.
inline int32_t run(blockdev::BackendQueue& q, blockdev::IoRequest req) {
  static uint64_t next_cookie = 1000;
  req.cookie = ++next_cookie;
  auto submitted = q.submit(req);
  INFO((submitted ? std::string("ok") : submitted.error().message()));
  REQUIRE(submitted.has_value());
  auto done = wait_for(q, 1);
  CHECK(done[0].cookie == req.cookie);
  return done[0].result;
}

}  // namespace hcnode::testing
