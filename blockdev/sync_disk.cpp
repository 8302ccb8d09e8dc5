#include "blockdev/sync_disk.hpp"

#include <poll.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <vector>

#include <spdlog/fmt/fmt.h>

namespace hcnode::blockdev {

Result<SyncDisk> SyncDisk::open(std::shared_ptr<Backend> backend, size_t depth) {
  auto queue = HCN_TRY(backend->open_queue(depth));
  return SyncDisk(std::move(backend), std::move(queue));
}

SyncDisk::~SyncDisk() {
  if (queue_) queue_->drain();
}

Status SyncDisk::wait(size_t n, std::vector<Completion>& out) {
  queue_->unplug();
  while (out.size() < n) {
    pollfd p{queue_->event_fd(), POLLIN, 0};
    if (::poll(&p, 1, -1) < 0 && errno != EINTR) return fail(from_errno("poll backend queue"));
    queue_->reap(out);
  }
  return {};
}

Status SyncDisk::run_one(IoRequest req) {
  req.cookie = 1;
  HCN_TRY_STATUS(queue_->submit(req));
  std::vector<Completion> done;
  HCN_TRY_STATUS(wait(1, done));
  if (done[0].result < 0) {
    return fail(from_negative_errno(done[0].result,
                                    fmt::format("{} {}+{} on {}", to_string(req.kind), req.offset,
                                                req.length, backend_->uri())));
  }
  return {};
}

Status SyncDisk::read(uint64_t offset, std::span<uint8_t> buf) {
  iovec iov{buf.data(), buf.size()};
  return run_one(IoRequest{IoKind::kRead, offset, buf.size(), {&iov, 1}, 0, false});
}

Status SyncDisk::write(uint64_t offset, std::span<const uint8_t> buf) {
  iovec iov{const_cast<uint8_t*>(buf.data()), buf.size()};  // writev does not modify it
  return run_one(IoRequest{IoKind::kWrite, offset, buf.size(), {&iov, 1}, 0, false});
}

Status SyncDisk::flush() { return run_one(IoRequest{IoKind::kFlush, 0, 0, {}, 0, false}); }

Status SyncDisk::write_zeroes(uint64_t offset, uint64_t length, bool may_unmap) {
  return run_one(IoRequest{IoKind::kWriteZeroes, offset, length, {}, 0, may_unmap});
}

Status SyncDisk::discard(uint64_t offset, uint64_t length) {
  return run_one(IoRequest{IoKind::kDiscard, offset, length, {}, 0, false});
}

Status SyncDisk::run_all(std::span<IoRequest> requests) {
  std::optional<Error> first;
  size_t next = 0;
  size_t done = 0;
  std::vector<Completion> out;
  const size_t depth = std::max<size_t>(1, queue_->depth());
  while (done < requests.size()) {
    while (next < requests.size() && queue_->in_flight() < depth) {
      requests[next].cookie = next;
      auto submitted = queue_->submit(requests[next]);
      if (!submitted) {
        if (submitted.error().code() == EAGAIN) break;
        if (!first) first = submitted.error();
        ++done;  // never started: nothing to wait for
      }
      ++next;
    }
    out.clear();
    HCN_TRY_STATUS(wait(1, out));
    for (const auto& c : out) {
      ++done;
      if (c.result < 0 && !first) {
        const auto& r = requests[c.cookie];
        first = from_negative_errno(
            c.result, fmt::format("{} {}+{} on {}", to_string(r.kind), r.offset, r.length,
                                  backend_->uri()));
      }
    }
  }
  if (first) return fail(*first);
  return {};
}

namespace {

bool all_zero(const uint8_t* p, size_t n) {
  // Compare the buffer with itself shifted by one word: zero iff the first word is zero.
  if (n < 8) return std::all_of(p, p + n, [](uint8_t b) { return b == 0; });
  uint64_t first;
  std::memcpy(&first, p, 8);
  return first == 0 && std::memcmp(p, p + 8, n - 8) == 0;
}

}  // namespace

Status copy_disk(SyncDisk& from, SyncDisk& to, uint64_t length, const CopyOptions& options) {
  const uint64_t chunk = std::max<uint64_t>(options.chunk, 4096);
  const size_t depth = std::max<size_t>(options.depth, 1);
  // A window of `depth` chunks: read them all, then write the non-zero ones, in order.
  std::vector<std::vector<uint8_t>> bufs(depth, std::vector<uint8_t>(chunk));
  std::vector<iovec> iovs(depth);
  uint64_t done = 0;
  while (done < length) {
    std::vector<IoRequest> reads;
    for (size_t i = 0; i < depth && done + i * chunk < length; ++i) {
      const uint64_t off = done + i * chunk;
      const uint64_t len = std::min(chunk, length - off);
      iovs[i] = iovec{bufs[i].data(), len};
      reads.push_back(IoRequest{IoKind::kRead, off, len, {&iovs[i], 1}, 0, false});
    }
    HCN_TRY_STATUS(from.run_all(reads));
    std::vector<IoRequest> writes;
    for (size_t i = 0; i < reads.size(); ++i) {
      if (options.skip_zeroes && all_zero(bufs[i].data(), reads[i].length)) continue;
      IoRequest w = reads[i];
      w.kind = IoKind::kWrite;
      writes.push_back(w);
    }
    HCN_TRY_STATUS(to.run_all(writes));
    for (const auto& r : reads) done += r.length;
    if (options.progress) options.progress(done);
  }
  return to.flush();
}

}  // namespace hcnode::blockdev
