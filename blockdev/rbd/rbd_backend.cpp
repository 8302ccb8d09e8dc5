#include "blockdev/rbd/rbd_backend.hpp"

#include <charconv>
#include <climits>

#include <spdlog/spdlog.h>

#include "blockdev/backend_support.hpp"
#include "blockdev/completion_list.hpp"
#include "blockdev/open_backend.hpp"

namespace hcnode::blockdev {
namespace {

class RbdQueue final : public CallbackQueue {
 public:
  RbdQueue(std::shared_ptr<const RbdBackend> backend, std::unique_ptr<CompletionList> list,
           size_t depth)
      : CallbackQueue(backend->uri(), std::move(list), depth),
        api_(backend->api()),
        backend_(std::move(backend)) {}

  Status submit(const IoRequest& req) override;

  // librbd's finisher thread.
  static void on_complete(rbd_completion_t c, void* arg) {
    std::unique_ptr<Request> req(static_cast<Request*>(arg));
    // The queue outlives its requests (it drains before it goes); read it before complete().
    const CephApi& api = static_cast<const RbdQueue*>(req->queue)->api_;
    // Reads return the bytes read; writes the length or 0 depending on the path; flush,
    // discard and write-zeroes 0. Releasing inside the callback is allowed: librbd holds its
    // own reference while the callback runs (QEMU's block/rbd.c does the same).
    const ssize_t r = api.rbd_aio_get_return_value(c);
    api.rbd_aio_release(c);
    complete(std::move(req), r, /*check_write_length=*/false);
  }

 private:
  const CephApi& api_;
  std::shared_ptr<const RbdBackend> backend_;
};

Status RbdQueue::submit(const IoRequest& req) {
  auto ctx = HCN_TRY(begin(req, backend_->info()));
  rbd_completion_t c = nullptr;
  if (int r = api_.rbd_aio_create_completion(ctx.get(), &RbdQueue::on_complete, &c); r < 0) {
    cancel();
    return fail(from_negative_errno(r, uri() + ": rbd_aio_create_completion"));
  }
  rbd_image_t image = backend_->image();
  const auto iovcnt = static_cast<int>(req.iov.size());
  int r = 0;
  switch (req.kind) {
    case IoKind::kRead:
      // librbd copies the iovec array (it builds its read result from it before returning).
      r = api_.rbd_aio_readv(image, req.iov.data(), iovcnt, req.offset, c);
      break;
    case IoKind::kWrite:
      r = api_.rbd_aio_writev(image, req.iov.data(), iovcnt, req.offset, c);
      break;
    case IoKind::kFlush:
      r = api_.rbd_aio_flush(image, c);
      break;
    case IoKind::kDiscard:
      r = api_.rbd_aio_discard(image, req.offset, req.length, c);
      break;
    case IoKind::kWriteZeroes:
      // Without may_unmap the zeroed range must stay allocated: THICK_PROVISION writes zeroes
      // instead of deallocating objects (as QEMU's block/rbd.c does for !BDRV_REQ_MAY_UNMAP).
      r = api_.rbd_aio_write_zeroes(image, req.offset, req.length, c,
                                    req.may_unmap ? 0 : RBD_WRITE_ZEROES_FLAG_THICK_PROVISION, 0);
      break;
  }
  if (r < 0) {
    // Refused before it started: librbd will not call back.
    cancel();
    api_.rbd_aio_release(c);
    return fail(from_negative_errno(
        r, fmt::format("{}: rbd_aio {} at {}", uri(), to_string(req.kind), req.offset)));
  }
  (void)ctx.release();  // owned by the callback now
  return {};
}

uint64_t conf_u64(const RadosCluster& cluster, const std::string& key, uint64_t fallback) {
  auto text = cluster.conf_get(key);
  uint64_t value = 0;
  if (!text) return fallback;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  return ec == std::errc() && end == text->data() + text->size() ? value : fallback;
}

}  // namespace

Result<std::shared_ptr<RbdBackend>> RbdBackend::open(std::shared_ptr<RadosCluster> cluster,
                                                     const RbdLocation& where,
                                                     const BackendOptions& options) {
  const std::string uri = DiskUri{where}.to_string();
  if (where.snapshot && !options.read_only) {
    return fail(EROFS, uri + ": a snapshot can only be opened read-only");
  }
  auto io = RadosIoCtx::create(*cluster, where.pool, where.ns);
  if (!io) {
    if (io.error().code() == ENOENT) return fail(ENOENT, uri + ": no such pool " + where.pool);
    return fail(io.error().wrap(uri));
  }
  auto image = RbdImage::open(*io, where.image, where.snapshot, options.read_only);
  if (!image) {
    if (image.error().code() == ENOENT) {
      return fail(ENOENT, uri + (where.snapshot ? ": no such image or snapshot" : ": no such image"));
    }
    return fail(image.error().wrap(uri));
  }
  std::shared_ptr<RbdBackend> backend(
      new RbdBackend(std::move(cluster), std::move(*io), std::move(*image), uri));

  rbd_image_info_t stat{};
  if (int r = backend->api().rbd_stat(backend->image(), &stat, sizeof stat); r < 0) {
    return fail(from_negative_errno(r, uri + ": rbd_stat"));
  }
  if (stat.size % 512 != 0) {
    return fail(EINVAL, fmt::format("{}: size {} is not a multiple of 512 bytes", uri, stat.size));
  }
  BackendInfo& info = backend->info_;
  info.kind = "rbd";
  info.size = stat.size;
  info.read_only = options.read_only;
  info.optimal_io_size = static_cast<uint32_t>(std::min<uint64_t>(stat.obj_size, UINT32_MAX));
  info.max_segments = IOV_MAX;  // rbd_aio_readv/writev refuse more
  info.write_zeroes = true;     // partial objects zeroed, whole objects removed: reads give 0
  // Discard: with rbd_skip_partial_discard (default true) librbd rounds every discard inward
  // to rbd_discard_granularity_bytes (default 64 KiB) and leaves the unaligned head and tail
  // untouched (librbd/ImageCtx.cc, io::ImageDiscardRequest). So the granularity we announce is
  // that value, and a discard does NOT guarantee zeroes; guests that need zeroes use
  // write-zeroes. Per-image overrides (rbd config image set) are not looked at.
  const bool skip_partial =
      backend->cluster_->conf_get("rbd_skip_partial_discard").value_or("true") != "false";
  const uint64_t granularity = conf_u64(*backend->cluster_, "rbd_discard_granularity_bytes", 65536);
  if (skip_partial && granularity != 0) {
    info.discard_granularity = static_cast<uint32_t>(std::min<uint64_t>(granularity, stat.obj_size));
    info.discard_zeroes = false;
  } else {
    info.discard_granularity = 4096;
    info.discard_zeroes = true;  // no skipping: partial extents are zeroed
  }
  spdlog::info("{}: {} bytes, {}, object size {}, discard granularity {}", uri, info.size,
               options.read_only ? "read-only" : "read-write", stat.obj_size,
               info.discard_granularity);
  return backend;
}

Result<std::unique_ptr<BackendQueue>> RbdBackend::open_queue(size_t depth) {
  if (depth == 0) {
    return fail(EINVAL, uri_ + ": queue depth 0");
  }
  auto list = HCN_TRY(CompletionList::create());
  return std::unique_ptr<BackendQueue>(
      std::make_unique<RbdQueue>(shared_from_this(), std::move(list), depth));
}

}  // namespace hcnode::blockdev
