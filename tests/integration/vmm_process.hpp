// VmmProcess: runs hcnode-vmm as a child process for integration tests — output captured to
// files, a bounded wait, SIGKILL at destruction if still running, and a control-socket client.
// It never signals anything but its own live child: kill(2) with pid 0 or -1 signals the
// whole process group or every process the caller may signal (as root: the machine), and a
// reaped pid may already belong to an unrelated process.
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
  // Starts hcnode-vmm with args (argv[0] excluded). Throws std::system_error if fork fails.
  explicit VmmProcess(const std::vector<std::string>& args);
  ~VmmProcess();
  VmmProcess(const VmmProcess&) = delete;  // one owner of the child (it is killed and reaped once)
  VmmProcess& operator=(const VmmProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Waits up to timeout for exit; returns the exit status, or nullopt on timeout. A death by
  // signal returns 128 + signal number.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  // Sends sig to the child while it is not yet reaped; false (nothing sent) once wait() has
  // collected it.
  bool signal(int sig);
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

// kill(pid, sig) for a single process only: refuses (false, errno EINVAL) a pid <= 0, which
// kill(2) takes as a process group or "every process" (POSIX kill(), "If pid is 0 / -1").
bool signal_pid(pid_t pid, int sig);

// Paths baked in by CMake.
std::string vmm_binary();
std::string probe_elf();

}  // namespace hcnode::testing
