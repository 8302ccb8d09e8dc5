#include "cluster/cli/interrupt.hpp"

#include <signal.h>

#include <atomic>

namespace hcnode::cli {

namespace {

// Written by the signal handler, read by the progress callback (lock-free, async-signal-safe).
std::atomic<bool> g_interrupted{false};
struct sigaction g_old_int {};
struct sigaction g_old_term {};

void on_signal(int sig) {
  if (g_interrupted.exchange(true)) {
    // Second signal: give up waiting for the operation to stop.
    ::signal(sig, SIG_DFL);
    ::raise(sig);
  }
}

}  // namespace

InterruptScope::InterruptScope() {
  g_interrupted = false;
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, &g_old_int);
  ::sigaction(SIGTERM, &sa, &g_old_term);
}

InterruptScope::~InterruptScope() {
  ::sigaction(SIGINT, &g_old_int, nullptr);
  ::sigaction(SIGTERM, &g_old_term, nullptr);
}

bool InterruptScope::interrupted() { return g_interrupted.load(); }

}  // namespace hcnode::cli
