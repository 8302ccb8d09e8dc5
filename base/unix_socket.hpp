// Unix stream sockets: a listening socket bound to a path, and client connections.
#pragma once

#include <string>

#include "base/fd.hpp"
#include "base/result.hpp"

namespace hcnode {

// Binds and listens on path (removing a stale socket file first; refusing a path that exists
// and is not a socket). The socket is non-blocking and close-on-exec.
Result<Fd> listen_unix(const std::string& path, int backlog = 16);
// Connects to the socket at path (blocking, close-on-exec).
Result<Fd> connect_unix(const std::string& path);
// accept4 with SOCK_NONBLOCK|SOCK_CLOEXEC; EAGAIN is an error with code EAGAIN.
Result<Fd> accept_unix(const Fd& listener);

}  // namespace hcnode
