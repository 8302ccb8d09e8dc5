#include "tests/integration/vmm_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <thread>

#include "base/unix_socket.hpp"

namespace hcnode::testing {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

bool signal_pid(pid_t pid, int sig) {
  if (pid <= 0) {
    errno = EINVAL;
    return false;
  }
  return ::kill(pid, sig) == 0;
}

std::string vmm_binary() { return HCNODE_VMM_BIN; }
std::string probe_elf() { return HCNODE_PROBE_ELF_PATH; }

VmmProcess::VmmProcess(const std::vector<std::string>& args) {
  static int counter = 0;
  const std::string base = std::filesystem::temp_directory_path() /
                           ("hcnode-vmm-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  out_path_ = base + ".out";
  err_path_ = base + ".err";
  std::vector<std::string> argv_storage{vmm_binary()};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  const pid_t pid = ::fork();
  if (pid < 0) {
    // Without this check pid_ = -1 would reach kill() (every process) and waitpid() (any child).
    throw std::system_error(errno, std::generic_category(), "fork for " + argv_storage[0]);
  }
  if (pid == 0) {
    int out = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(out, STDOUT_FILENO);
    ::dup2(err, STDERR_FILENO);
    std::vector<char*> argv;
    for (auto& a : argv_storage) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  pid_ = pid;
}

VmmProcess::~VmmProcess() {
  if (pid_ > 0 && !status_) {
    signal_pid(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  std::filesystem::remove(out_path_);
  std::filesystem::remove(err_path_);
}

std::optional<int> VmmProcess::wait(std::chrono::milliseconds timeout) {
  if (status_) {
    return status_;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int raw = 0;
    pid_t r = ::waitpid(pid_, &raw, WNOHANG);
    if (r == pid_) {
      status_ = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
      return status_;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

bool VmmProcess::signal(int sig) { return !status_ && signal_pid(pid_, sig); }
std::string VmmProcess::stdout_text() const { return slurp(out_path_); }
std::string VmmProcess::stderr_text() const { return slurp(err_path_); }

bool wait_for_socket(const std::string& path, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

nlohmann::json control_request(const std::string& socket_path, const std::string& request_line) {
  auto fd = connect_unix(socket_path);
  if (!fd) {
    return {};
  }
  std::string line = request_line + "\n";
  if (::send(fd->get(), line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size())) {
    return {};
  }
  std::string reply;
  char c;
  while (::read(fd->get(), &c, 1) == 1 && c != '\n') {
    reply.push_back(c);
  }
  return nlohmann::json::parse(reply, nullptr, false);
}

}  // namespace hcnode::testing
