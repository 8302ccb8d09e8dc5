// What every backend implementation shares (not part of the public Backend interface):
// request validation against BackendInfo, and rate-limited logging of failed completions.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

#include "base/result.hpp"
#include "blockdev/backend.hpp"

namespace hcnode::blockdev {

// The checks backend.hpp promises for submit(): EROFS for a modifying request on a read-only
// disk; EOPNOTSUPP for discard / write-zeroes the backend does not offer; EINVAL for a range
// outside [0, size), a zero length, or read/write iovecs that are missing, too many
// (info.max_segments) or do not add up to req.length.
Status check_request(const IoRequest& req, const BackendInfo& info);

// Failed completions are logged at warn, but a dying disk must not flood the log: at most
// kPerSecond lines per second per queue, then one line saying how many were suppressed.
// Thread-safe: librbd's and gfapi's callbacks log from their own threads.
class FailureLog {
 public:
  static constexpr int kPerSecond = 10;

  explicit FailureLog(std::string disk) : disk_(std::move(disk)) {}

  void failed(IoKind kind, uint64_t offset, uint64_t length, int result);
  // A short transfer turned into -EIO: the one failure without an errno of its own.
  void short_transfer(IoKind kind, uint64_t offset, uint64_t length, int64_t done);

 private:
  bool admit();

  const std::string disk_;
  std::mutex mu_;
  std::chrono::steady_clock::time_point window_{};  // guarded by mu_
  int logged_ = 0;                                  // guarded by mu_
  uint64_t suppressed_ = 0;                         // guarded by mu_
};

}  // namespace hcnode::blockdev
