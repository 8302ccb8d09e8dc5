#include "base/unix_socket.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

namespace hcnode {
namespace {

Result<sockaddr_un> make_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return fail(ENAMETOOLONG, "unix socket path '" + path + "' is empty or longer than " +
                                  std::to_string(sizeof addr.sun_path - 1) + " bytes");
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

}  // namespace

Result<Fd> listen_unix(const std::string& path, int backlog) {
  sockaddr_un addr = HCN_TRY(make_address(path));
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return fail(EEXIST, path + " exists and is not a socket");
    }
    ::unlink(path.c_str());  // a stale socket of an earlier process
  }
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) {
    return fail(from_errno("socket(AF_UNIX)"));
  }
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) < 0) {
    return fail(from_errno("bind " + path));
  }
  if (::listen(fd.get(), backlog) < 0) {
    return fail(from_errno("listen " + path));
  }
  return fd;
}

Result<Fd> connect_unix(const std::string& path) {
  sockaddr_un addr = HCN_TRY(make_address(path));
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) {
    return fail(from_errno("socket(AF_UNIX)"));
  }
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) < 0) {
    return fail(from_errno("connect " + path));
  }
  return fd;
}

Result<Fd> accept_unix(const Fd& listener) {
  int fd = ::accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) {
    return fail(from_errno("accept"));
  }
  return Fd(fd);
}

}  // namespace hcnode
