#include "blockdev/backend.hpp"

#include <spdlog/spdlog.h>

#include <cstring>
#include <system_error>

#include "blockdev/backend_support.hpp"

namespace hcnode::blockdev {

const char* to_string(IoKind kind) {
  switch (kind) {
    case IoKind::kRead: return "read";
    case IoKind::kWrite: return "write";
    case IoKind::kFlush: return "flush";
    case IoKind::kDiscard: return "discard";
    case IoKind::kWriteZeroes: return "write-zeroes";
  }
  return "unknown";
}

Status check_request(const IoRequest& req, const BackendInfo& info) {
  const bool modifies = req.kind == IoKind::kWrite || req.kind == IoKind::kDiscard ||
                        req.kind == IoKind::kWriteZeroes;
  if (modifies && info.read_only) {
    return fail(EROFS, std::string(to_string(req.kind)) + " on a read-only disk");
  }
  if (req.kind == IoKind::kFlush) {
    return {};
  }
  if (req.kind == IoKind::kDiscard && info.discard_granularity == 0) {
    return fail(EOPNOTSUPP, "discard is not supported by this disk");
  }
  if (req.kind == IoKind::kWriteZeroes && !info.write_zeroes) {
    return fail(EOPNOTSUPP, "write-zeroes is not supported by this disk");
  }
  // A zero-length request has no meaning for any backend (fallocate(2) even refuses it).
  const bool open_ended = info.growable || (info.container && req.kind == IoKind::kRead);
  const uint64_t limit = open_ended ? (uint64_t{1} << 56) : info.size;
  if (req.length == 0 || req.offset > limit || req.length > limit - req.offset) {
    return fail(EINVAL, fmt::format("{} [{}, +{}) outside the disk of {} bytes",
                                    to_string(req.kind), req.offset, req.length, info.size));
  }
  if (req.kind == IoKind::kRead || req.kind == IoKind::kWrite) {
    if (req.iov.empty() || req.iov.size() > info.max_segments) {
      return fail(EINVAL, fmt::format("{} with {} iovecs (1..{} allowed)", to_string(req.kind),
                                      req.iov.size(), info.max_segments));
    }
    uint64_t sum = 0;
    for (const iovec& v : req.iov) {
      sum += v.iov_len;  // cannot overflow: at most 1024 size_t values that fit in memory
    }
    if (sum != req.length) {
      return fail(EINVAL, fmt::format("{} iovecs hold {} bytes, request says {}",
                                      to_string(req.kind), sum, req.length));
    }
  }
  return {};
}

bool FailureLog::admit() {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  if (now - window_ >= std::chrono::seconds(1)) {
    if (suppressed_ > 0) {
      spdlog::warn("{}: {} more failed requests not logged", disk_, suppressed_);
    }
    window_ = now;
    logged_ = 0;
    suppressed_ = 0;
  }
  if (logged_ < kPerSecond) {
    ++logged_;
    return true;
  }
  ++suppressed_;
  return false;
}

void FailureLog::failed(IoKind kind, uint64_t offset, uint64_t length, int result) {
  if (admit()) {
    spdlog::warn("{}: {} at {} length {} failed: {} ({})", disk_, to_string(kind), offset, length,
                 std::system_category().message(-result), -result);
  }
}

void FailureLog::short_transfer(IoKind kind, uint64_t offset, uint64_t length, int64_t done) {
  if (admit()) {
    spdlog::warn("{}: {} at {} length {}: short transfer of {} bytes, failed with EIO", disk_,
                 to_string(kind), offset, length, done);
  }
}

void zero_iov_from(std::span<const iovec> iov, uint64_t from) {
  for (const iovec& v : iov) {
    if (from >= v.iov_len) {
      from -= v.iov_len;
      continue;
    }
    std::memset(static_cast<char*>(v.iov_base) + from, 0, v.iov_len - from);
    from = 0;
  }
}

Result<std::unique_ptr<CallbackQueue::Request>> CallbackQueue::begin(const IoRequest& req,
                                                                    const BackendInfo& info) {
  HCN_TRY_STATUS(with_context(check_request(req, info), uri_));
  if (list_->in_flight() >= depth_) {
    return fail(EAGAIN, fmt::format("{}: {} requests in flight", uri_, depth_));
  }
  auto ctx = std::make_unique<Request>(Request{this, req.cookie, req.kind, req.offset, req.length});
  if (info.container && req.kind == IoKind::kRead) {
    ctx->zero_tail.assign(req.iov.begin(), req.iov.end());
  }
  list_->started();
  return ctx;
}

void CallbackQueue::complete(std::unique_ptr<Request> req, int64_t ret, bool check_write_length) {
  CallbackQueue& q = *req->queue;
  int32_t result = 0;
  const bool check_length =
      req->kind == IoKind::kRead || (check_write_length && req->kind == IoKind::kWrite);
  if (ret < 0) {
    result = static_cast<int32_t>(ret);
    q.log_.failed(req->kind, req->offset, req->length, result);
  } else if (!req->zero_tail.empty() && static_cast<uint64_t>(ret) < req->length) {
    // A container's read that reached the end of the file (BackendOptions::container).
    zero_iov_from(req->zero_tail, static_cast<uint64_t>(ret));
  } else if (check_length && static_cast<uint64_t>(ret) != req->length) {
    // Inside the disk a transfer is always whole; a short one means the storage misbehaved.
    result = -EIO;
    q.log_.short_transfer(req->kind, req->offset, req->length, ret);
  }
  // The last touch of the queue: after push() its owner may destroy it (CompletionList::push).
  q.list_->push(Completion{req->cookie, result});
}

}  // namespace hcnode::blockdev
