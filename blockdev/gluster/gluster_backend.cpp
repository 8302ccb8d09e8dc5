#include "blockdev/gluster/gluster_backend.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <climits>

#include <spdlog/spdlog.h>

#include "blockdev/backend_support.hpp"
#include "blockdev/completion_list.hpp"
#include "blockdev/open_backend.hpp"

namespace hcnode::blockdev {
namespace {

// O_DIRECT on the bricks: offset and length in these units (see the header).
constexpr uint64_t kDirectAlign = 512;

class GlusterQueue final : public CallbackQueue {
 public:
  GlusterQueue(std::shared_ptr<const GlusterBackend> backend,
               std::unique_ptr<CompletionList> list, size_t depth)
      : CallbackQueue(backend->uri(), std::move(list), depth),
        api_(backend->api()),
        backend_(std::move(backend)) {}

  Status submit(const IoRequest& req) override;

  // gfapi's glfs_io_cbk, on its event threads: ret as the synchronous call would return it,
  // -1 with errno set on failure (glfs.h). pre/post stats are not used.
  static void on_complete(glfs_fd_t* /*fd*/, ssize_t ret, struct glfs_stat* /*pre*/,
                          struct glfs_stat* /*post*/, void* data) {
    const int err = errno;
    std::unique_ptr<Request> req(static_cast<Request*>(data));
    complete(std::move(req), ret < 0 ? -(err != 0 ? err : EIO) : ret,
             /*check_write_length=*/true);
  }

 private:
  const GfapiApi& api_;
  std::shared_ptr<const GlusterBackend> backend_;
};

Status GlusterQueue::submit(const IoRequest& req) {
  auto ctx = HCN_TRY(begin(req, backend_->info()));
  glfs_fd_t* fd = backend_->buffered_fd();
  if ((req.kind == IoKind::kRead || req.kind == IoKind::kWrite) &&
      backend_->direct_fd() != nullptr && req.offset % kDirectAlign == 0 &&
      req.length % kDirectAlign == 0) {
    fd = backend_->direct_fd();
  }
  const auto offset = static_cast<off_t>(req.offset);
  const auto iovcnt = static_cast<int>(req.iov.size());
  int r = 0;
  switch (req.kind) {
    case IoKind::kRead:
      // gfapi duplicates the iovec array (iov_dup) for the copy-out at completion.
      r = api_.glfs_preadv_async(fd, req.iov.data(), iovcnt, offset, 0, &on_complete, ctx.get());
      break;
    case IoKind::kWrite:
      // gfapi copies the data into its own buffer before returning.
      r = api_.glfs_pwritev_async(fd, req.iov.data(), iovcnt, offset, 0, &on_complete, ctx.get());
      break;
    case IoKind::kFlush:
      // Write-behind, the shard translator and the bricks' fdatasync(2) all work per inode,
      // so a flush on the buffered descriptor also covers writes made through the O_DIRECT one.
      r = api_.glfs_fdatasync_async(fd, &on_complete, ctx.get());
      break;
    case IoKind::kDiscard:
      r = api_.glfs_discard_async(fd, offset, req.length, &on_complete, ctx.get());
      break;
    case IoKind::kWriteZeroes:
      r = api_.glfs_zerofill_async(fd, offset, static_cast<off_t>(req.length), &on_complete,
                                   ctx.get());
      break;
  }
  if (r < 0) {
    const int err = errno;
    cancel();  // refused before it started: no callback
    return fail(from_negative_errno(
        -(err != 0 ? err : EIO),
        fmt::format("{}: gfapi async {} at {}", uri(), to_string(req.kind), req.offset)));
  }
  (void)ctx.release();  // owned by the callback now
  return {};
}

}  // namespace

Result<std::shared_ptr<GlusterBackend>> GlusterBackend::open(std::shared_ptr<GlfsVolume> volume,
                                                             const GlusterLocation& where,
                                                             const BackendOptions& options) {
  const std::string uri = DiskUri{where}.to_string();
  std::shared_ptr<GlusterBackend> backend(new GlusterBackend(std::move(volume), uri));
  const int access = options.read_only ? O_RDONLY : O_RDWR;
  auto file = GlfsFile::open(*backend->volume_, where.path, access);
  if (!file) {
    if (file.error().code() == ENOENT) return fail(ENOENT, uri + ": no such file");
    return fail(file.error().wrap(uri));
  }
  backend->buffered_.emplace(std::move(*file));
  // A qcow2 layer's file always gets the O_DIRECT descriptor too, whatever the disk's cache
  // mode: write-behind (even with strict-write-ordering, glfs_handles.cpp) lost some of a clone's
  // in-place writes into a freshly copied-on-write cluster at 32 writes in flight, and strict-o-direct
  // (group virt) takes O_DIRECT writes past write-behind. The guest still sees its cache mode:
  // flushes go to the bricks either way.
  if (options.cache == CachePolicy::kNone || options.container) {
    auto direct = GlfsFile::open(*backend->volume_, where.path, access | O_DIRECT);
    if (direct) {
      backend->direct_.emplace(std::move(*direct));
    } else if (direct.error().code() == EINVAL) {
      spdlog::warn("{}: the volume refuses O_DIRECT; cache=none falls back to gfapi's caches",
                   uri);
    } else {
      return fail(direct.error().wrap(uri));
    }
  }
  struct stat st {};
  if (backend->api().glfs_fstat(backend->buffered_fd(), &st) < 0) {
    return fail(from_errno(uri + ": glfs_fstat"));
  }
  if (!S_ISREG(st.st_mode)) {
    return fail(EINVAL, uri + ": not a regular file");
  }
  const auto size = static_cast<uint64_t>(st.st_size);
  // A container's file may end anywhere (BackendOptions::container); a disk is whole sectors.
  if (size % 512 != 0 && !options.container) {
    return fail(EINVAL, fmt::format("{}: size {} is not a multiple of 512 bytes", uri, size));
  }
  BackendInfo& info = backend->info_;
  info.kind = "gluster";
  info.size = size;
  info.read_only = options.read_only;
  info.growable = options.growable && !options.read_only;
  // Reads across the end of a container's file come back short from the bricks (O_DIRECT or
  // not); CallbackQueue::complete zero-fills the rest.
  info.container = options.container;
  info.max_segments = IOV_MAX;
  // The bricks implement discard as fallocate(PUNCH_HOLE) and zerofill as fallocate(ZERO_RANGE)
  // or written zeroes (posix translator); the shard translator forwards both per shard.
  info.discard_granularity = 4096;
  info.discard_zeroes = true;
  info.write_zeroes = true;
  spdlog::info("{}: {} bytes, {}, {}", uri, size, options.read_only ? "read-only" : "read-write",
               backend->direct_ ? "O_DIRECT" : "cached");
  return backend;
}

Result<std::unique_ptr<BackendQueue>> GlusterBackend::open_queue(size_t depth) {
  if (depth == 0) {
    return fail(EINVAL, uri_ + ": queue depth 0");
  }
  auto list = HCN_TRY(CompletionList::create());
  return std::unique_ptr<BackendQueue>(
      std::make_unique<GlusterQueue>(shared_from_this(), std::move(list), depth));
}

}  // namespace hcnode::blockdev
