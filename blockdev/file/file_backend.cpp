#include "blockdev/file/file_backend.hpp"

#include <fcntl.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <linux/fs.h>  // BLKGETSIZE64, BLKSSZGET, BLKPBSZGET
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <algorithm>
#include <span>
#include <vector>

#include <spdlog/spdlog.h>

#include "base/event_fd.hpp"
#include "blockdev/backend_support.hpp"
#include "blockdev/open_backend.hpp"

namespace hcnode::blockdev {
namespace {

constexpr int kPunchHole = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
constexpr int kZeroRange = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
// io_uring_setup(2) refuses more SQ entries than this (IORING_MAX_ENTRIES).
constexpr size_t kMaxDepth = 32768;

class FileQueue final : public BackendQueue {
 public:
  static Result<std::unique_ptr<BackendQueue>> create(std::shared_ptr<const FileBackend> backend,
                                                      size_t depth);
  ~FileQueue() override;

  Status submit(const IoRequest& req) override;
  void unplug() override { flush_sq(); }
  int event_fd() const override { return event_.fd(); }
  size_t reap(std::vector<Completion>& out) override;
  void drain() override;
  size_t in_flight() const override { return in_flight_; }
  size_t depth() const override { return slots_.size(); }

 private:
  // One request from submit() until its completion; user_data of its SQE is the slot index.
  struct Slot {
    IoKind kind = IoKind::kRead;
    uint64_t cookie = 0;
    uint64_t offset = 0;
    uint64_t length = 0;
    uint64_t done = 0;        // read/write: bytes transferred so far (short transfers resume)
    std::vector<iovec> iov;   // our copy; advanced past `done` bytes from `first`
    size_t first = 0;
    int mode = 0;             // fallocate mode for discard / write-zeroes
  };

  FileQueue(std::shared_ptr<const FileBackend> backend, EventFd event, size_t depth);

  int route(const Slot& s) const;
  bool prepare(uint32_t index);
  void flush_sq();
  void process_cqes();
  void on_cqe(uint32_t index, int res);
  void finish(uint32_t index, int32_t result);

  std::shared_ptr<const FileBackend> backend_;
  EventFd event_;
  io_uring ring_{};
  bool ring_ready_ = false;
  bool sq_pending_ = false;  // SQEs prepared but not yet accepted by io_uring_enter
  bool zero_range_;          // cleared when the kernel answers EOPNOTSUPP
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_;
  std::vector<Completion> ready_;  // completed, not yet reaped
  size_t in_flight_ = 0;
  FailureLog log_;
};

FileQueue::FileQueue(std::shared_ptr<const FileBackend> backend, EventFd event, size_t depth)
    : backend_(std::move(backend)),
      event_(std::move(event)),
      zero_range_(backend_->layout().zero_range),
      slots_(depth),
      log_(backend_->uri()) {
  free_.reserve(depth);
  for (size_t i = depth; i > 0; --i) {
    free_.push_back(static_cast<uint32_t>(i - 1));
  }
  ready_.reserve(depth);
}

Result<std::unique_ptr<BackendQueue>> FileQueue::create(std::shared_ptr<const FileBackend> backend,
                                                        size_t depth) {
  if (depth == 0 || depth > kMaxDepth) {
    return fail(EINVAL, fmt::format("{}: queue depth {} (1..{})", backend->uri(), depth, kMaxDepth));
  }
  auto event = HCN_TRY(EventFd::create(EFD_NONBLOCK));
  std::unique_ptr<FileQueue> queue(new FileQueue(std::move(backend), std::move(event), depth));
  // The CQ ring defaults to twice the SQ entries; at most `depth` requests (one CQE each) are
  // ever outstanding, so it cannot overflow.
  if (int r = io_uring_queue_init(static_cast<unsigned>(depth), &queue->ring_, 0); r < 0) {
    return fail(from_negative_errno(r, queue->backend_->uri() + ": io_uring_queue_init"));
  }
  queue->ring_ready_ = true;
  if (int r = io_uring_register_eventfd(&queue->ring_, queue->event_.fd()); r < 0) {
    return fail(from_negative_errno(r, queue->backend_->uri() + ": io_uring_register_eventfd"));
  }
  return std::unique_ptr<BackendQueue>(std::move(queue));
}

FileQueue::~FileQueue() {
  if (ring_ready_) {
    drain();
    io_uring_queue_exit(&ring_);
  }
}

// O_DIRECT only for requests whose offset, iovec bases and iovec lengths satisfy the file's
// direct-I/O alignment (statx(2) STATX_DIOALIGN); everything else goes through the page cache.
int FileQueue::route(const Slot& s) const {
  if (backend_->direct_fd() < 0) {
    return backend_->buffered_fd();
  }
  const auto& layout = backend_->layout();
  bool aligned = (s.offset + s.done) % layout.dio_offset_align == 0;
  for (size_t i = s.first; aligned && i < s.iov.size(); ++i) {
    aligned = reinterpret_cast<uintptr_t>(s.iov[i].iov_base) % layout.dio_mem_align == 0 &&
              s.iov[i].iov_len % layout.dio_offset_align == 0;
  }
  return aligned ? backend_->direct_fd() : backend_->buffered_fd();
}

bool FileQueue::prepare(uint32_t index) {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) {
    // Cannot happen: each slot holds at most one SQE and the SQ ring has `depth` entries.
    return false;
  }
  Slot& s = slots_[index];
  const auto nr = static_cast<unsigned>(s.iov.size() - s.first);
  const auto offset = static_cast<off_t>(s.offset + s.done);
  switch (s.kind) {
    case IoKind::kRead:
      io_uring_prep_readv(sqe, route(s), s.iov.data() + s.first, nr, static_cast<__u64>(offset));
      break;
    case IoKind::kWrite:
      io_uring_prep_writev(sqe, route(s), s.iov.data() + s.first, nr, static_cast<__u64>(offset));
      break;
    case IoKind::kFlush:
      // fdatasync writes back the INODE's dirty pages and flushes the device cache, whichever
      // descriptor it is called on (fsync(2)), so one call covers the O_DIRECT descriptor too.
      io_uring_prep_fsync(sqe, backend_->buffered_fd(), IORING_FSYNC_DATASYNC);
      break;
    case IoKind::kDiscard:
    case IoKind::kWriteZeroes:
      io_uring_prep_fallocate(sqe, backend_->buffered_fd(), s.mode, offset,
                              static_cast<off_t>(s.length));
      break;
  }
  io_uring_sqe_set_data64(sqe, index);
  sq_pending_ = true;
  return true;
}

void FileQueue::flush_sq() {
  if (!sq_pending_) return;
  // io_uring_submit publishes the SQ tail before it enters the kernel, so on failure the SQEs
  // stay queued and the next call retries them; nothing is lost. With at most `depth` requests
  // outstanding the kernel has no reason to refuse (no CQ overflow), so this is a safety net.
  int r = io_uring_submit(&ring_);
  if (r < 0) {
    spdlog::warn("{}: io_uring_submit: error {}, will retry", backend_->uri(), -r);
    return;
  }
  sq_pending_ = false;
}

Status FileQueue::submit(const IoRequest& req) {
  HCN_TRY_STATUS(with_context(check_request(req, backend_->info()), backend_->uri()));
  if (free_.empty()) {
    return fail(EAGAIN, fmt::format("{}: {} requests in flight", backend_->uri(), in_flight_));
  }
  const uint32_t index = free_.back();
  Slot& s = slots_[index];
  s.kind = req.kind;
  s.cookie = req.cookie;
  s.offset = req.offset;
  s.length = req.length;
  s.done = 0;
  s.first = 0;
  s.iov.assign(req.iov.begin(), req.iov.end());
  if (req.kind == IoKind::kDiscard) {
    s.mode = kPunchHole;
  } else if (req.kind == IoKind::kWriteZeroes) {
    s.mode = zero_range_ ? kZeroRange : kPunchHole;
  }
  if (!prepare(index)) {
    return fail(EAGAIN, backend_->uri() + ": io_uring submission queue full");
  }
  free_.pop_back();
  ++in_flight_;
  return {};  // io_uring_enter at unplug(): one system call per batch
}

void FileQueue::finish(uint32_t index, int32_t result) {
  Slot& s = slots_[index];
  ready_.push_back(Completion{s.cookie, result});
  s.iov.clear();
  free_.push_back(index);
  --in_flight_;
}

void FileQueue::on_cqe(uint32_t index, int res) {
  Slot& s = slots_[index];
  switch (s.kind) {
    case IoKind::kRead:
    case IoKind::kWrite: {
      if (res < 0) break;
      const auto n = static_cast<uint64_t>(res);
      if (n == 0 && s.kind == IoKind::kRead && backend_->info().container) {
        // The end of a container's file: the rest reads as zeroes (BackendOptions::container).
        // An O_DIRECT read across the end returned the bytes up to it and resumed here on the
        // buffered descriptor (its offset is no longer aligned); whatever the kernel left in
        // the buffer past those bytes is overwritten.
        zero_iov_from(std::span<const iovec>(s.iov).subspan(s.first), 0);
        finish(index, 0);
        return;
      }
      if (n == 0 || n > s.length - s.done) {
        // Zero bytes with data still due: the file shrank under us (requests lie inside the
        // size seen at open). Never loop on it.
        log_.short_transfer(s.kind, s.offset, s.length, static_cast<int64_t>(s.done + n));
        finish(index, -EIO);
        return;
      }
      s.done += n;
      if (s.done == s.length) {
        finish(index, 0);
        return;
      }
      // A short transfer (a signal, a page-cache write crossing a full extent...): resume
      // with the rest rather than failing the guest's request.
      for (uint64_t left = n; left > 0;) {
        iovec& v = s.iov[s.first];
        if (left >= v.iov_len) {
          left -= v.iov_len;
          ++s.first;
        } else {
          v.iov_base = static_cast<char*>(v.iov_base) + left;
          v.iov_len -= left;
          left = 0;
        }
      }
      if (prepare(index)) return;
      res = -EIO;
      break;
    }
    case IoKind::kWriteZeroes:
      if (res == -EOPNOTSUPP && s.mode == kZeroRange) {
        // ZERO_RANGE is not supported after all (the probe at open said otherwise, or the file
        // moved): a punched hole reads back as zeroes too.
        zero_range_ = false;
        s.mode = kPunchHole;
        if (prepare(index)) return;
        res = -EIO;
      }
      break;
    case IoKind::kFlush:
    case IoKind::kDiscard:
      break;
  }
  if (res < 0) {
    log_.failed(s.kind, s.offset, s.length, res);
    finish(index, res);
  } else {
    finish(index, 0);
  }
}

void FileQueue::process_cqes() {
  io_uring_cqe* cqe = nullptr;
  while (io_uring_peek_cqe(&ring_, &cqe) == 0 && cqe != nullptr) {
    const auto index = static_cast<uint32_t>(io_uring_cqe_get_data64(cqe));
    const int res = cqe->res;
    io_uring_cqe_seen(&ring_, cqe);
    on_cqe(index, res);
  }
  flush_sq();  // resumed short transfers
}

size_t FileQueue::reap(std::vector<Completion>& out) {
  // Consume first: a CQE posted after this point signals the eventfd again.
  (void)event_.consume();
  process_cqes();
  const size_t n = ready_.size();
  out.insert(out.end(), ready_.begin(), ready_.end());
  ready_.clear();
  return n;
}

void FileQueue::drain() {
  while (in_flight_ > 0) {
    int r = io_uring_submit_and_wait(&ring_, 1);
    if (r < 0 && r != -EINTR) {
      spdlog::error("{}: io_uring_submit_and_wait: error {} with {} in flight", backend_->uri(),
                    -r, in_flight_);
      return;
    }
    if (r >= 0) sq_pending_ = false;
    process_cqes();
  }
  // Completions collected here stay reapable: make sure the eventfd says so.
  if (!ready_.empty()) (void)event_.signal();
}

// Probes fallocate(2) modes beyond the end of the file, where no data can be harmed: a file
// system that lacks a mode answers EOPNOTSUPP whatever the range. (tmpfs punches holes but has
// no ZERO_RANGE.)
bool supports_fallocate(int fd, int mode, uint64_t size) {
  return ::fallocate(fd, mode, static_cast<off_t>(size), 4096) == 0;
}

}  // namespace

Result<std::shared_ptr<FileBackend>> FileBackend::open(const FileLocation& where,
                                                       const BackendOptions& options) {
  std::shared_ptr<FileBackend> backend(new FileBackend());
  const std::string& uri = backend->uri_ = DiskUri{where}.to_string();
  const int access = (options.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;

  backend->buffered_.reset(::open(where.path.c_str(), access));
  if (!backend->buffered_.valid()) {
    if (errno == ENOENT) return fail(ENOENT, uri + ": no such file");
    return fail(from_errno(uri + ": open"));
  }
  const int fd = backend->buffered_.get();
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return fail(from_errno(uri + ": fstat"));
  }
  const bool block_device = S_ISBLK(st.st_mode);
  if (!block_device && !S_ISREG(st.st_mode)) {
    return fail(EINVAL, uri + ": neither a regular file nor a block device");
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (block_device && ::ioctl(fd, BLKGETSIZE64, &size) != 0) {
    return fail(from_errno(uri + ": ioctl BLKGETSIZE64"));
  }
  // A container's file may end anywhere (BackendOptions::container); a disk is whole sectors.
  if (size % 512 != 0 && !(options.container && !block_device)) {
    return fail(EINVAL, fmt::format("{}: size {} is not a multiple of 512 bytes", uri, size));
  }

  if (options.cache == CachePolicy::kNone) {
    backend->direct_.reset(::open(where.path.c_str(), access | O_DIRECT));
    if (!backend->direct_.valid()) {
      if (errno != EINVAL) return fail(from_errno(uri + ": open O_DIRECT"));
      spdlog::warn("{}: the file system refuses O_DIRECT; cache=none falls back to the page cache",
                   uri);
    }
  }
  Layout& layout = backend->layout_;
  if (backend->direct_.valid()) {
    struct statx stx {};
    if (::statx(backend->direct_.get(), "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
        (stx.stx_mask & STATX_DIOALIGN) != 0) {
      if (stx.stx_dio_offset_align == 0) {
        // statx's way of saying "no direct I/O on this file" (statx(2)).
        spdlog::warn("{}: no direct I/O on this file; cache=none falls back to the page cache",
                     uri);
        backend->direct_.reset();
      } else {
        layout.dio_mem_align = std::max<uint32_t>(stx.stx_dio_mem_align, 1);
        layout.dio_offset_align = stx.stx_dio_offset_align;
      }
    } else if (int sector = 0; block_device && ::ioctl(fd, BLKSSZGET, &sector) == 0) {
      layout.dio_mem_align = layout.dio_offset_align = static_cast<uint32_t>(sector);
    } else {
      layout.dio_mem_align = layout.dio_offset_align = 4096;  // safe for any file system
    }
  }

  BackendInfo& info = backend->info_;
  info.kind = "file";
  info.size = size;
  info.read_only = options.read_only;
  info.growable = options.growable && !options.read_only;
  info.container = options.container;
  if (unsigned int pbs = 0; block_device && ::ioctl(fd, BLKPBSZGET, &pbs) == 0 && pbs >= 512) {
    info.physical_block_size = pbs;
  }
  if (block_device) {
    // fallocate(2) on a block device: ZERO_RANGE always works (the kernel writes zeroes when the
    // device cannot). Discard would need BLKDISCARD, which is not implemented: not offered.
    info.write_zeroes = true;
    layout.zero_range = true;
  } else if (!options.read_only) {
    const bool punch = supports_fallocate(fd, kPunchHole, size);
    layout.zero_range = supports_fallocate(fd, kZeroRange, size);
    // Give back what the ZERO_RANGE probe may have preallocated past the end of the file.
    if (layout.zero_range && punch) (void)supports_fallocate(fd, kPunchHole, size);
    if (punch) {
      info.discard_granularity = static_cast<uint32_t>(std::max<blksize_t>(st.st_blksize, 512));
      info.discard_zeroes = true;  // a punched hole reads back as zeroes
    }
    info.write_zeroes = layout.zero_range || punch;
  }
  spdlog::info("{}: {} bytes, {}{}, discard {}, write-zeroes {}", uri, size,
               options.read_only ? "read-only" : "read-write",
               backend->direct_.valid()
                   ? fmt::format(", O_DIRECT (align mem {} offset {})", layout.dio_mem_align,
                                 layout.dio_offset_align)
                   : std::string(", page cache"),
               info.discard_granularity != 0 ? "yes" : "no",
               !info.write_zeroes ? "no" : (layout.zero_range ? "zero-range" : "punch-hole"));
  return backend;
}

Result<std::unique_ptr<BackendQueue>> FileBackend::open_queue(size_t depth) {
  return FileQueue::create(shared_from_this(), depth);
}

}  // namespace hcnode::blockdev
