// VmmProcess: runs hcnode-vmm as a child process for integration tests — output captured to
// files, a bounded wait, SIGKILL at destruction if still running, and a control-socket client.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/fd.hpp"

namespace hcnode::testing {

class VmmProcess {
 public:
  // Starts hcnode-vmm with args (argv[0] excluded).
  explicit VmmProcess(const std::vector<std::string>& args);
  ~VmmProcess();

  pid_t pid() const { return pid_; }
  // Waits up to timeout for exit; returns the exit status, or nullopt on timeout. A death by
  // signal returns 128 + signal number.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  void signal(int sig);
  std::string stdout_text() const;
  std::string stderr_text() const;

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::string out_path_;
  std::string err_path_;
};

// One JSON request, one reply line, over a fresh connection. Empty json on connect failure.
nlohmann::json control_request(const std::string& socket_path, const std::string& request_line);

// Polls until path exists as a socket (the VMM created it) or timeout.
bool wait_for_socket(const std::string& path, std::chrono::milliseconds timeout);

// Paths baked in by CMake.
std::string vmm_binary();
std::string probe_elf();

}  // namespace hcnode::testing
