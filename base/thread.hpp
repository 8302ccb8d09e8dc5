// Named threads. hcnode keeps its threads few and named (`vcpu0`, `blk0-q1`, `ctl`), so that
// `top -H`, `describe` and crash reports say which part of the VM a thread is.
//
// Every thread is started by spawn_named_thread(): it names the thread (Linux limits names to
// 15 bytes), blocks asynchronous signals (the main thread alone handles SIGTERM/SIGINT through
// a signalfd; vCPU threads unblock their kick signal themselves), and turns an escaped
// exception into a logged failure and a call of on_failure instead of std::terminate().
#pragma once

#include <sys/types.h>

#include <functional>
#include <stop_token>
#include <string>
#include <thread>

namespace hcnode {

struct ThreadOptions {
  // Called on the failing thread with a description when the body throws.
  std::function<void(const std::string&)> on_failure;
  // Block all blockable signals in the new thread (default). Set false only for threads that
  // must receive a signal, and then unblock just that one.
  bool block_signals = true;
};

std::jthread spawn_named_thread(std::string name, std::function<void(std::stop_token)> body,
                                ThreadOptions options = {});

// Sets the calling thread's name (truncated to 15 bytes).
void set_current_thread_name(const std::string& name);
// The calling thread's name as the kernel has it.
std::string current_thread_name();
// The kernel thread id of the calling thread (what `describe` reports and `top -H` shows).
pid_t current_tid();

}  // namespace hcnode
