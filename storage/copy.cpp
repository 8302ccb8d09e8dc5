#include "storage/copy.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <vector>

#include <spdlog/fmt/fmt.h>

namespace hcnode::storage {

using blockdev::IoKind;
using blockdev::IoRequest;
using blockdev::SyncDisk;

AlignedBuffer::AlignedBuffer(size_t size) : size_(size) {
  const size_t rounded = (size + 4095) / 4096 * 4096;
  ptr_.reset(static_cast<uint8_t*>(std::aligned_alloc(4096, std::max<size_t>(rounded, 4096))));
  if (!ptr_) {
    throw std::bad_alloc();
  }
}

bool is_all_zero(std::span<const uint8_t> bytes) {
  const uint8_t* p = bytes.data();
  const size_t n = bytes.size();
  if (n < 16) {
    return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; });
  }
  // Zero iff the first 16 bytes are zero and the buffer equals itself shifted by 16.
  static constexpr uint8_t kZero[16] = {};
  return std::memcmp(p, kZero, 16) == 0 && std::memcmp(p, p + 16, n - 16) == 0;
}

Status report_progress(const ProgressFn& progress, uint64_t done, uint64_t total) {
  if (progress && !progress(done, total)) {
    return fail(ECANCELED, "cancelled");
  }
  return {};
}

namespace {

// One window of reads: up to kCopyWindow chunks starting at `offset`.
struct Window {
  std::vector<AlignedBuffer> bufs;
  std::vector<iovec> iovs;
  std::vector<IoRequest> reads;

  Window() : iovs(kCopyWindow) {
    bufs.reserve(kCopyWindow);
    for (size_t i = 0; i < kCopyWindow; ++i) {
      bufs.emplace_back(kCopyChunk);
    }
  }

  Status read(SyncDisk& from, uint64_t offset, uint64_t length) {
    reads.clear();
    for (size_t i = 0; i < kCopyWindow && offset + i * kCopyChunk < length; ++i) {
      const uint64_t off = offset + i * kCopyChunk;
      const uint64_t len = std::min<uint64_t>(kCopyChunk, length - off);
      iovs[i] = iovec{bufs[i].data(), len};
      reads.push_back(IoRequest{IoKind::kRead, off, len, {&iovs[i], 1}, 0, false});
    }
    return from.run_all(reads);
  }

  uint64_t bytes() const {
    uint64_t n = 0;
    for (const auto& r : reads) n += r.length;
    return n;
  }

  std::span<const uint8_t> chunk(size_t i) const {
    return {static_cast<const uint8_t*>(iovs[i].iov_base), iovs[i].iov_len};
  }
};

Status write_all_fd(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return fail(from_errno("write to output"));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return {};
}

Status pwrite_all_fd(int fd, const uint8_t* p, size_t n, uint64_t off) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(off));
    if (w < 0) {
      if (errno == EINTR) continue;
      return fail(from_errno(fmt::format("pwrite at {}", off)));
    }
    p += w;
    n -= static_cast<size_t>(w);
    off += static_cast<uint64_t>(w);
  }
  return {};
}

}  // namespace

Status copy_disk_to_disk(SyncDisk& from, SyncDisk& to, uint64_t length,
                         const ProgressFn& progress) {
  Window window;
  uint64_t done = 0;
  HCN_TRY_STATUS(report_progress(progress, 0, length));
  while (done < length) {
    HCN_TRY_STATUS(window.read(from, done, length));
    std::vector<IoRequest> writes;
    for (size_t i = 0; i < window.reads.size(); ++i) {
      if (is_all_zero(window.chunk(i))) continue;
      IoRequest w = window.reads[i];
      w.kind = IoKind::kWrite;
      writes.push_back(w);
    }
    HCN_TRY_STATUS(to.run_all(writes));
    done += window.bytes();
    HCN_TRY_STATUS(report_progress(progress, done, length));
  }
  return to.flush();
}

Status copy_disk_to_fd(SyncDisk& from, int fd, uint64_t length, bool seekable, bool sparse,
                       const ProgressFn& progress) {
  Window window;
  uint64_t done = 0;
  HCN_TRY_STATUS(report_progress(progress, 0, length));
  while (done < length) {
    HCN_TRY_STATUS(window.read(from, done, length));
    for (size_t i = 0; i < window.reads.size(); ++i) {
      auto bytes = window.chunk(i);
      if (!seekable) {
        HCN_TRY_STATUS(write_all_fd(fd, bytes.data(), bytes.size()));
      } else if (!sparse || !is_all_zero(bytes)) {
        HCN_TRY_STATUS(pwrite_all_fd(fd, bytes.data(), bytes.size(), window.reads[i].offset));
      }
    }
    done += window.bytes();
    HCN_TRY_STATUS(report_progress(progress, done, length));
  }
  if (seekable) {
    // Trailing zero chunks were skipped: the length comes from ftruncate.
    if (::ftruncate(fd, static_cast<off_t>(length)) != 0) {
      return fail(from_errno("ftruncate output"));
    }
    if (::fsync(fd) != 0) {
      return fail(from_errno("fsync output"));
    }
  }
  return {};
}

Result<size_t> read_full(int fd, std::span<uint8_t> buf) {
  size_t got = 0;
  while (got < buf.size()) {
    ssize_t r = ::read(fd, buf.data() + got, buf.size() - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      return fail(from_errno("read input"));
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  return got;
}

}  // namespace hcnode::storage
