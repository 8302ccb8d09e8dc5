#include "base/thread.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <exception>

#include <spdlog/spdlog.h>

namespace hcnode {

void set_current_thread_name(const std::string& name) {
  // The kernel's limit is 16 bytes including the terminating NUL.
  std::string truncated = name.substr(0, 15);
  pthread_setname_np(pthread_self(), truncated.c_str());
}

std::string current_thread_name() {
  char buf[16] = {};
  if (pthread_getname_np(pthread_self(), buf, sizeof buf) != 0) {
    return "?";
  }
  return buf;
}

pid_t current_tid() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

std::jthread spawn_named_thread(std::string name, std::function<void(std::stop_token)> body,
                                ThreadOptions options) {
  // Block signals before creating the thread so it starts with the mask (no window in which a
  // SIGTERM could be delivered to it); the creating thread's mask is restored right after.
  sigset_t all, old;
  sigfillset(&all);
  if (options.block_signals) {
    pthread_sigmask(SIG_BLOCK, &all, &old);
  }
  std::jthread thread([name, body = std::move(body), on_failure = std::move(options.on_failure)](
                          std::stop_token stop) {
    set_current_thread_name(name);
    try {
      body(stop);
    } catch (const std::exception& e) {
      std::string what = "thread " + name + " failed: " + e.what();
      spdlog::critical("{}", what);
      if (on_failure) {
        on_failure(what);
      }
    } catch (...) {
      std::string what = "thread " + name + " failed with an unknown exception";
      spdlog::critical("{}", what);
      if (on_failure) {
        on_failure(what);
      }
    }
  });
  if (options.block_signals) {
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  return thread;
}

}  // namespace hcnode
