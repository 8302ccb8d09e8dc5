// ControlServer: the VMM's control socket (unix, JSON lines; see control_protocol.hpp).
//
// Runs on the VMM control thread's EventLoop: accepts clients, reads request lines, calls the
// handler (on that same thread, so the handler may touch the Vm freely) and writes the reply.
// A client that sends a line longer than kMaxLine is disconnected; replies to a client that does
// not read are buffered up to a bound, then the client is dropped.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "base/event_loop.hpp"
#include "base/fd.hpp"
#include "compute/api/control_protocol.hpp"

namespace hcnode::compute::api {

class ControlServer {
 public:
  // Returns the reply line for a request.
  using Handler = std::function<std::string(const Request&)>;

  static Result<std::unique_ptr<ControlServer>> create(EventLoop& loop, const std::string& path, Handler handler);
  ~ControlServer();

  const std::string& path() const { return path_; }

 private:
  struct Client {
    Fd fd;
    std::string in;
    std::string out;
  };
  ControlServer(EventLoop& loop, std::string path, Fd listener, Handler handler);
  void on_accept();
  void on_client(int fd, uint32_t events);
  void flush(Client& client);
  void drop(int fd);

  EventLoop& loop_;
  std::string path_;
  Fd listener_;
  Handler handler_;
  std::map<int, Client> clients_;
};

}  // namespace hcnode::compute::api
