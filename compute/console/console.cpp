#include "compute/console/console.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include <spdlog/spdlog.h>

#include "base/thread.hpp"
#include "base/unix_socket.hpp"

namespace hcnode::compute {

Result<std::unique_ptr<Console>> Console::create(const std::string& target) {
  Fd out;
  Fd listener;
  std::string socket_path;
  if (target == "stdout") {
    out = Fd(::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3));
    if (!out) {
      return fail(from_errno("dup stdout"));
    }
  } else if (target.starts_with("file:")) {
    const std::string path = target.substr(5);
    out = Fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
    if (!out) {
      return fail(from_errno("serial console file " + path));
    }
  } else if (target.starts_with("unix:")) {
    socket_path = target.substr(5);
    listener = HCN_TRY(listen_unix(socket_path));
  } else if (target != "none") {
    return fail(EINVAL, "serial console target '" + target +
                            "' (expected stdout, file:PATH, unix:PATH or none)");
  }
  return std::unique_ptr<Console>(new Console(target, std::move(out), std::move(listener), socket_path));
}

Console::Console(std::string target, Fd out, Fd listener, std::string socket_path)
    : target_(std::move(target)), out_(std::move(out)), listener_(std::move(listener)),
      socket_path_(std::move(socket_path)) {}

Console::~Console() {
  stop();
  if (!socket_path_.empty()) {
    ::unlink(socket_path_.c_str());
  }
}

Status Console::start(InputHandler handler) {
  input_ = std::move(handler);
  if (!listener_) {
    return {};
  }
  loop_ = HCN_TRY(EventLoop::create("console"));
  HCN_TRY_STATUS(loop_->add(listener_.get(), EPOLLIN, [this](uint32_t) { on_accept(); }));
  thread_ = spawn_named_thread("console", [this](std::stop_token) {
    if (auto r = loop_->run(); !r) {
      spdlog::error("console loop: {}", r.error().message());
    }
  });
  return {};
}

void Console::stop() {
  if (loop_ && thread_.joinable()) {
    loop_->stop();
    thread_.join();
  }
}

void Console::on_accept() {
  for (;;) {
    auto client = accept_unix(listener_);
    if (!client) {
      if (client.error().code() != EAGAIN) {
        spdlog::warn("console: {}", client.error().message());
      }
      return;
    }
    const int fd = client->get();
    {
      std::lock_guard lock(mu_);
      // Replay the history so a late client sees what it missed (best effort, non-blocking).
      if (!history_.empty()) {
        (void)::send(fd, history_.data(), history_.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      }
      clients_.push_back(std::move(*client));
    }
    if (auto r = loop_->add(fd, EPOLLIN | EPOLLRDHUP, [this, fd](uint32_t ev) { on_client(fd, ev); }); !r) {
      spdlog::warn("console: {}", r.error().message());
    }
  }
}

void Console::on_client(int fd, uint32_t events) {
  uint8_t buf[1024];
  ssize_t n = (events & EPOLLIN) ? ::read(fd, buf, sizeof buf) : 0;
  if (n > 0) {
    if (input_) {
      input_(std::span<const uint8_t>(buf, static_cast<size_t>(n)));
    }
    return;
  }
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
    return;
  }
  // EOF, error or hang-up: drop the client.
  (void)loop_->remove(fd);
  std::lock_guard lock(mu_);
  std::erase_if(clients_, [fd](const Fd& c) { return c.get() == fd; });
}

void Console::write(std::span<const uint8_t> bytes) {
  if (bytes.empty()) {
    return;
  }
  std::lock_guard lock(mu_);
  history_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  if (history_.size() > kHistoryBytes) {
    history_.erase(0, history_.size() - kHistoryBytes);
  }
  if (out_) {
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::write(out_.get(), bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        break;  // the guest keeps running even if its console output cannot be written
      }
      done += static_cast<size_t>(n);
    }
  }
  for (const auto& c : clients_) {
    (void)::send(c.get(), bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  }
}

std::string Console::history() const {
  std::lock_guard lock(mu_);
  return history_;
}

size_t Console::clients() const {
  std::lock_guard lock(mu_);
  return clients_.size();
}

}  // namespace hcnode::compute
