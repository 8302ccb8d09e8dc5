#include "compute/api/control_server.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "base/unix_socket.hpp"

namespace hcnode::compute::api {
namespace {
constexpr size_t kMaxPendingOutput = 1 << 20;
constexpr size_t kMaxClients = 64;
}  // namespace

Result<std::unique_ptr<ControlServer>> ControlServer::create(EventLoop& loop, const std::string& path,
                                                             Handler handler) {
  Fd listener = HCN_TRY(with_context(listen_unix(path), "control socket"));
  std::unique_ptr<ControlServer> server(new ControlServer(loop, path, std::move(listener), std::move(handler)));
  HCN_TRY_STATUS(loop.add(server->listener_.get(), EPOLLIN, [s = server.get()](uint32_t) { s->on_accept(); }));
  return server;
}

ControlServer::ControlServer(EventLoop& loop, std::string path, Fd listener, Handler handler)
    : loop_(loop), path_(std::move(path)), listener_(std::move(listener)), handler_(std::move(handler)) {}

ControlServer::~ControlServer() {
  for (auto& [fd, client] : clients_) {
    (void)loop_.remove(fd);
  }
  (void)loop_.remove(listener_.get());
  ::unlink(path_.c_str());
}

void ControlServer::on_accept() {
  for (;;) {
    auto fd = accept_unix(listener_);
    if (!fd) {
      if (fd.error().code() != EAGAIN) {
        spdlog::warn("control socket: {}", fd.error().message());
      }
      return;
    }
    if (clients_.size() >= kMaxClients) {
      spdlog::warn("control socket: refusing client, {} already connected", clients_.size());
      continue;  // fd closes here
    }
    const int raw = fd->get();
    if (auto r = loop_.add(raw, EPOLLIN | EPOLLRDHUP, [this, raw](uint32_t ev) { on_client(raw, ev); }); !r) {
      spdlog::warn("control socket: {}", r.error().message());
      continue;
    }
    clients_.emplace(raw, Client{std::move(*fd), {}, {}});
  }
}

void ControlServer::drop(int fd) {
  (void)loop_.remove(fd);
  clients_.erase(fd);
}

void ControlServer::flush(Client& client) {
  while (!client.out.empty()) {
    ssize_t n = ::send(client.fd.get(), client.out.data(), client.out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      client.out.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    break;  // EAGAIN (wait for EPOLLOUT) or an error (the read side notices the hang-up)
  }
  (void)loop_.modify(client.fd.get(), EPOLLIN | EPOLLRDHUP | (client.out.empty() ? 0u : static_cast<uint32_t>(EPOLLOUT)));
}

void ControlServer::on_client(int fd, uint32_t events) {
  auto it = clients_.find(fd);
  if (it == clients_.end()) {
    return;
  }
  Client& client = it->second;
  if (events & EPOLLOUT) {
    flush(client);
  }
  if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
    return;
  }
  char buf[4096];
  ssize_t n = ::read(fd, buf, sizeof buf);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
    return;
  }
  if (n <= 0) {
    drop(fd);
    return;
  }
  client.in.append(buf, static_cast<size_t>(n));
  size_t start = 0;
  for (size_t nl; (nl = client.in.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::string_view line(client.in.data() + start, nl - start);
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    if (line.empty()) {
      continue;
    }
    auto request = parse_request(line);
    client.out += request ? handler_(*request) : error_reply(nullptr, request.error().context());
  }
  client.in.erase(0, start);
  if (client.in.size() > kMaxLine) {
    client.out += error_reply(nullptr, "request longer than " + std::to_string(kMaxLine) + " bytes");
    flush(client);
    drop(fd);
    return;
  }
  flush(client);
  if (client.out.size() > kMaxPendingOutput) {
    spdlog::warn("control socket: client does not read its replies; dropping it");
    drop(fd);
  }
}

}  // namespace hcnode::compute::api
