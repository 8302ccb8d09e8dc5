// ImageService: validation, pool lookup and the data copies (import, export); everything that
// depends on the kind of pool is in the drivers (rbd/rbd_pool.cpp, file/file_pool.cpp).
#include "storage/image_service.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <map>
#include <random>

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "base/fd.hpp"
#include "base/size.hpp"
#include "blockdev/qcow2/qcow2_format.hpp"
#include "blockdev/sync_disk.hpp"
#include "storage/copy.hpp"
#include "storage/pool_driver.hpp"

namespace hcnode::storage {

using blockdev::IoKind;
using blockdev::IoRequest;
using blockdev::SyncDisk;

std::string random_suffix() {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string out(6, 'x');
  for (auto& c : out) c = kAlphabet[rng() % (sizeof(kAlphabet) - 1)];
  return out;
}

class ImageService::Impl final : public PoolDirectory {
 public:
  Impl(StorageConfig config, std::shared_ptr<blockdev::StorageSessions> sessions)
      : config_(std::move(config)), sessions_(std::move(sessions)) {
    for (const auto& pool : config_.pools) {
      if (pool.kind() == PoolKind::kRbd) {
        drivers_[pool.name] = make_rbd_pool(pool, sessions_, *this);
      } else {
        drivers_[pool.name] = make_file_pool(pool, sessions_);
      }
    }
  }

  std::optional<std::string> rbd_pool_name(const std::string& rados_pool,
                                           const std::string& ns) const override {
    for (const auto& pool : config_.pools) {
      if (const auto* r = std::get_if<RbdPool>(&pool.location)) {
        if (r->pool == rados_pool && r->ns == ns) return pool.name;
      }
    }
    return std::nullopt;
  }

  Result<PoolDriver*> pool(std::string_view name) {
    auto it = drivers_.find(std::string(name));
    if (it == drivers_.end()) {
      return fail(ENODEV, fmt::format("unknown pool '{}' (configured: {}; config from {})", name,
                                      config_.pool_names(),
                                      config_.source.empty() ? "?" : config_.source));
    }
    return it->second.get();
  }

  // The driver of an image reference that must not name a snapshot.
  Result<PoolDriver*> image_pool(const ImageRef& ref, bool allow_snapshot = false) {
    HCN_TRY_STATUS(validate_name(ref.pool, "pool name"));
    HCN_TRY_STATUS(validate_name(ref.name, "image name"));
    if (ref.snapshot) {
      if (!allow_snapshot) {
        return fail(EINVAL, fmt::format("'{}' names a snapshot; expected POOL/NAME", ref.to_string()));
      }
      HCN_TRY_STATUS(validate_name(*ref.snapshot, "snapshot name"));
    }
    return pool(ref.pool);
  }

  // A new image's name must be free.
  Status require_free(PoolDriver& driver, const ImageRef& ref) {
    if (HCN_TRY(driver.exists(ref.name))) {
      return fail(EEXIST, fmt::format("image {} already exists", ref.to_string()));
    }
    return {};
  }

  // Sizes above the pool's free space are refused. A pool that cannot tell (no `df` rights,
  // statvfs failing) does not block the operation: the write fails later with ENOSPC if it must.
  Status check_space(PoolDriver& driver, uint64_t size) {
    auto space = driver.space();
    if (!space) {
      spdlog::warn("pool {}: free space unknown ({}); not checked", driver.config().name,
                   space.error().message());
      return {};
    }
    if (size > space->free) {
      return fail(ENOSPC, fmt::format("{} exceeds the free space of pool {} ({} free of {})",
                                      format_size(size), driver.config().name,
                                      format_size(space->free), format_size(space->total)));
    }
    return {};
  }

  StorageConfig config_;
  std::shared_ptr<blockdev::StorageSessions> sessions_;
  std::map<std::string, std::unique_ptr<PoolDriver>, std::less<>> drivers_;
};

namespace {

// Raw disk of a pending image, opened read-write.
Result<SyncDisk> open_pending(PendingImage& pending, blockdev::StorageSessions& sessions) {
  auto backend = HCN_TRY(blockdev::open_backend(pending.uri(), {}, sessions));
  return SyncDisk::open(std::move(backend));
}

Result<SyncDisk> open_for_read(const ImageService::Location& where,
                               blockdev::StorageSessions& sessions) {
  blockdev::BackendOptions options;
  options.read_only = true;
  options.format = where.format;
  auto backend = HCN_TRY(blockdev::open_backend(where.uri, options, sessions));
  return SyncDisk::open(std::move(backend));
}

bool has_qcow2_magic(int fd) {
  uint8_t magic[4] = {};
  if (::pread(fd, magic, sizeof(magic), 0) != static_cast<ssize_t>(sizeof(magic))) return false;
  return blockdev::qcow2::load_be32(magic) == blockdev::qcow2::kMagic;
}

Result<std::string> absolute_path(const std::string& path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) == nullptr) return fail(from_errno("source " + path));
  return std::string(buf);
}

}  // namespace

// ---- construction -------------------------------------------------------------------------

Result<std::unique_ptr<ImageService>> ImageService::create(
    StorageConfig config, std::shared_ptr<blockdev::StorageSessions> sessions) {
  if (!sessions) {
    blockdev::SessionsConfig sc;
    sc.ceph = config.ceph;
    // An operator's command against a dead cluster fails within 20 s instead of librados'
    // default 300 s.
    sc.rados_overrides = {{"client_mount_timeout", "20"}};
    sessions = std::make_shared<blockdev::StorageSessions>(std::move(sc));
  }
  auto impl = std::make_unique<Impl>(std::move(config), std::move(sessions));
  return std::unique_ptr<ImageService>(new ImageService(std::move(impl)));
}

ImageService::ImageService(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ImageService::~ImageService() = default;

const StorageConfig& ImageService::config() const { return impl_->config_; }
blockdev::StorageSessions& ImageService::sessions() { return *impl_->sessions_; }

// ---- pools and names ------------------------------------------------------------------------

std::vector<PoolSummary> ImageService::pools() {
  std::vector<PoolSummary> out;
  for (const auto& pool : impl_->config_.pools) {
    PoolSummary s;
    s.name = pool.name;
    s.kind = pool.kind();
    s.location = pool.describe();
    auto space = impl_->drivers_.at(pool.name)->space();
    if (space) {
      s.space = *space;
      s.reachable = true;
    } else {
      s.error = space.error().message();
    }
    out.push_back(std::move(s));
  }
  return out;
}

Result<ImageService::Location> ImageService::locate(const ImageRef& image) {
  auto* driver = HCN_TRY(impl_->image_pool(image, /*allow_snapshot=*/true));
  return driver->locate(image.name, image.snapshot);
}

// ---- queries --------------------------------------------------------------------------------

Result<std::vector<ImageSummary>> ImageService::list(std::string_view pool,
                                                     const ListOptions& options) {
  auto* driver = HCN_TRY(impl_->pool(pool));
  return driver->list(options);
}

Result<ImageInfo> ImageService::info(const ImageRef& image) {
  auto* driver = HCN_TRY(impl_->image_pool(image));
  return driver->info(image.name);
}

Result<DuReport> ImageService::du(std::string_view pool, std::optional<std::string> name) {
  auto* driver = HCN_TRY(impl_->pool(pool));
  if (name) HCN_TRY_STATUS(validate_name(*name, "image name"));
  DuReport report;
  report.pool = std::string(pool);
  report.images = HCN_TRY(driver->du(name));
  for (const auto& e : report.images) {
    report.total_provisioned += e.provisioned;
    report.total_used += e.used;
  }
  if (auto space = driver->space()) report.space = *space;
  return report;
}

// ---- creating images ------------------------------------------------------------------------

Result<ImageInfo> ImageService::create_image(const ImageRef& image, const CreateOptions& options) {
  auto* driver = HCN_TRY(impl_->image_pool(image));
  HCN_TRY_STATUS(validate_size(options.size));
  HCN_TRY_STATUS(impl_->require_free(*driver, image));
  HCN_TRY_STATUS(impl_->check_space(*driver, options.size));
  auto pending = HCN_TRY(driver->begin_image(image.name, options.size));
  HCN_TRY_STATUS(pending->commit());
  return driver->info(image.name);
}

Result<ImageInfo> ImageService::import_file(const std::string& source_path, const ImageRef& image,
                                            const ImportOptions& options) {
  auto* driver = HCN_TRY(impl_->image_pool(image));
  HCN_TRY_STATUS(impl_->require_free(*driver, image));
  const std::string path = HCN_TRY(absolute_path(source_path));
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail(from_errno("open source " + path));
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) return fail(from_errno("stat source " + path));
  if (!S_ISREG(st.st_mode)) {
    return fail(EINVAL, "source " + path + " is not a regular file (pipe it to import from stdin)");
  }
  const auto format = options.source_format.value_or(
      has_qcow2_magic(fd.get()) ? ImageFormat::kQcow2 : ImageFormat::kRaw);

  if (format == ImageFormat::kQcow2 && options.keep_qcow2 &&
      driver->config().kind() != PoolKind::kRbd) {
    std::vector<uint8_t> head(static_cast<size_t>(std::min<off_t>(st.st_size, 64 * 1024)));
    if (::pread(fd.get(), head.data(), head.size(), 0) != static_cast<ssize_t>(head.size())) {
      return fail(from_errno("read source " + path));
    }
    auto header = blockdev::qcow2::parse_header(head);
    if (!header) return fail(header.error().wrap("source " + path));
    if (!header->backing_file.empty()) {
      return fail(EINVAL, fmt::format("source {} has a backing file ({}): it cannot be kept as "
                                      "qcow2; import it as raw (without keeping qcow2)",
                                      path, header->backing_file));
    }
    HCN_TRY_STATUS(impl_->check_space(*driver, static_cast<uint64_t>(st.st_size)));
    HCN_TRY_STATUS(import_qcow2_verbatim(*driver, image.name, fd.get(),
                                         static_cast<uint64_t>(st.st_size), options.progress));
    return driver->info(image.name);
  }

  if (format == ImageFormat::kRaw && st.st_size % 512 != 0) {
    return fail(EINVAL, fmt::format("source {} is {} bytes, not a multiple of 512: not a disk "
                                    "image (pad it, or import the qcow2 it came from)",
                                    path, st.st_size));
  }
  fd.reset();
  Location source{blockdev::DiskUri{blockdev::FileLocation{path}}, format};
  auto src = HCN_TRY(with_context(open_for_read(source, sessions()), "import source"));
  const uint64_t size = src.info().size;
  HCN_TRY_STATUS(validate_size(size));
  HCN_TRY_STATUS(impl_->check_space(*driver, size));
  auto pending = HCN_TRY(driver->begin_image(image.name, size));
  {
    auto dst = HCN_TRY(open_pending(*pending, sessions()));
    HCN_TRY_STATUS(with_context(copy_disk_to_disk(src, dst, size, options.progress),
                                "import " + image.to_string()));
  }  // closed before the rename
  HCN_TRY_STATUS(pending->commit());
  return driver->info(image.name);
}

Result<ImageInfo> ImageService::import_stream(int fd, const ImageRef& image,
                                              const ImportOptions& options) {
  auto* driver = HCN_TRY(impl_->image_pool(image));
  if (options.source_format == ImageFormat::kQcow2) {
    return fail(EINVAL, "imports from a stream are raw only: import a qcow2 image by its path");
  }
  HCN_TRY_STATUS(impl_->require_free(*driver, image));
  if (options.stream_size) {
    HCN_TRY_STATUS(validate_size(*options.stream_size));
    HCN_TRY_STATUS(impl_->check_space(*driver, *options.stream_size));
  }
  // Unknown length: start at 1 GiB and double as data arrives; shrink to the length at EOF.
  constexpr uint64_t kInitial = uint64_t{1} << 30;
  const uint64_t expected = options.stream_size.value_or(0);
  auto pending = HCN_TRY(driver->begin_image(image.name, options.stream_size.value_or(kInitial)));

  std::vector<AlignedBuffer> bufs;
  for (size_t i = 0; i < kCopyWindow; ++i) bufs.emplace_back(kCopyChunk);
  std::vector<iovec> iovs(kCopyWindow);
  uint64_t total = 0;
  bool eof = false;
  auto copied = [&]() -> Status {
    auto disk = HCN_TRY(open_pending(*pending, sessions()));
    HCN_TRY_STATUS(report_progress(options.progress, 0, expected));
    while (!eof) {
      std::vector<IoRequest> writes;
      uint64_t window_end = total;
      for (size_t i = 0; i < kCopyWindow && !eof; ++i) {
        const size_t got = HCN_TRY(read_full(fd, bufs[i].span()));
        eof = got < kCopyChunk;
        if (got == 0) break;
        if (eof && got % 512 != 0) {
          return fail(EINVAL, fmt::format("the stream is {} bytes, not a multiple of 512: not a "
                                          "disk image",
                                          window_end + got));
        }
        std::span<const uint8_t> bytes(bufs[i].data(), got);
        if (!is_all_zero(bytes)) {
          iovs[i] = iovec{bufs[i].data(), got};
          writes.push_back(IoRequest{IoKind::kWrite, window_end, got, {&iovs[i], 1}, 0, false});
        }
        window_end += got;
      }
      if (window_end > pending->size()) {
        if (options.stream_size) {
          return fail(EIO, fmt::format("the stream is longer than the {} bytes announced",
                                       expected));
        }
        uint64_t grown = pending->size();
        while (grown < window_end) grown *= 2;
        {
          auto closing = std::move(disk);  // every handle on the image closed before resizing
        }
        HCN_TRY_STATUS(pending->resize(grown));
        disk = HCN_TRY(open_pending(*pending, sessions()));
      }
      HCN_TRY_STATUS(disk.run_all(writes));
      total = window_end;
      HCN_TRY_STATUS(report_progress(options.progress, total, expected));
    }
    return disk.flush();
  }();
  if (!copied) return fail(copied.error().wrap("import " + image.to_string() + " from stream"));
  if (total == 0) return fail(EINVAL, "import " + image.to_string() + ": the stream was empty");
  if (options.stream_size && total != expected) {
    return fail(EIO, fmt::format("import {}: the stream ended after {} of {} bytes",
                                 image.to_string(), total, expected));
  }
  if (total != pending->size()) HCN_TRY_STATUS(pending->resize(total));
  HCN_TRY_STATUS(pending->commit());
  return driver->info(image.name);
}

Status ImageService::export_file(const ImageRef& image, const std::string& dest_path,
                                 const ExportOptions& options) {
  auto where = HCN_TRY(locate(image));
  auto src = HCN_TRY(open_for_read(where, sessions()));
  const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (options.overwrite ? O_TRUNC : O_EXCL);
  Fd fd(::open(dest_path.c_str(), flags, 0644));
  if (!fd) {
    if (errno == EEXIST) {
      return fail(EEXIST, "export destination " + dest_path + " exists (overwrite to replace it)");
    }
    return fail(from_errno("open export destination " + dest_path));
  }
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) return fail(from_errno("stat " + dest_path));
  const bool regular = S_ISREG(st.st_mode);
  auto copied = copy_disk_to_fd(src, fd.get(), src.info().size, regular, options.sparse,
                                options.progress);
  if (!copied) {
    if (regular) ::unlink(dest_path.c_str());
    return fail(copied.error().wrap("export " + image.to_string() + " to " + dest_path));
  }
  return {};
}

Status ImageService::export_stream(const ImageRef& image, int fd, const ExportOptions& options) {
  auto where = HCN_TRY(locate(image));
  auto src = HCN_TRY(open_for_read(where, sessions()));
  return with_context(copy_disk_to_fd(src, fd, src.info().size, /*seekable=*/false,
                                      /*sparse=*/false, options.progress),
                      "export " + image.to_string());
}

Result<ImageInfo> ImageService::clone(const ImageRef& source, const ImageRef& clone) {
  auto* from = HCN_TRY(impl_->image_pool(source, /*allow_snapshot=*/true));
  auto* to = HCN_TRY(impl_->image_pool(clone));
  // The drivers refuse a taken name themselves (RBD: rbd_clone3 does, atomically) and return
  // what they know about the new clone without reading it back.
  return from->clone(source.name, source.snapshot, *to, clone.name);
}

Status ImageService::flatten(const ImageRef& image, const ProgressFn& progress) {
  auto* driver = HCN_TRY(impl_->image_pool(image));
  return driver->flatten(image.name, progress);
}

Status ImageService::resize(const ImageRef& image, uint64_t new_size,
                            const ResizeOptions& options) {
  auto* driver = HCN_TRY(impl_->image_pool(image));
  HCN_TRY_STATUS(validate_size(new_size));
  auto info = HCN_TRY(driver->info(image.name));
  if (new_size > info.size) HCN_TRY_STATUS(impl_->check_space(*driver, new_size));
  if (new_size == info.size) return {};
  return driver->resize(image.name, new_size, options);
}

Status ImageService::remove(const ImageRef& image, const RemoveOptions& options) {
  auto* driver = HCN_TRY(impl_->image_pool(image));
  auto found = driver->info(image.name);
  if (!found) {
    // ENOENT: the driver's remove says so too, or clears an RBD clone killed before librbd
    // wrote its header (it does not open, but its name is taken).
    if (found.error().code() == ENOENT) return driver->remove(image.name, options.progress);
    return fail(found.error());
  }
  const ImageInfo& info = *found;
  if (!info.children.empty()) {
    std::string list;
    for (const auto& c : info.children) list += (list.empty() ? "" : ", ") + c;
    if (!options.flatten_children) {
      return fail(ENOTEMPTY, fmt::format("image {} has clones that depend on it: {} (flatten or "
                                         "remove them first, or remove with --flatten-children)",
                                         image.to_string(), list));
    }
    for (const auto& child : info.children) {
      auto ref = parse_image_ref(child);
      if (!ref) {
        return fail(ENOTEMPTY, fmt::format("image {}: clone {} is not in a configured pool (or is "
                                           "in the RBD trash); flatten it with rbd",
                                           image.to_string(), child));
      }
      spdlog::info("remove {}: flattening clone {}", image.to_string(), child);
      HCN_TRY_STATUS(with_context(flatten(*ref, options.progress),
                                  "remove " + image.to_string()));
    }
  }
  return driver->remove(image.name, options.progress);
}

Result<std::vector<std::string>> ImageService::purge_incomplete(std::string_view pool,
                                                                std::chrono::seconds min_age) {
  auto* driver = HCN_TRY(impl_->pool(pool));
  return driver->purge_incomplete(min_age);
}

// ---- golden images --------------------------------------------------------------------------

Status ImageService::mark_golden(const ImageRef& image) {
  auto* driver = HCN_TRY(impl_->image_pool(image));
  return driver->mark_golden(image.name);
}

Status ImageService::unmark_golden(const ImageRef& image) {
  auto* driver = HCN_TRY(impl_->image_pool(image));
  return driver->unmark_golden(image.name);
}

// ---- snapshots ------------------------------------------------------------------------------

Result<SnapshotInfo> ImageService::snapshot_create(const ImageRef& image,
                                                   std::string_view snapshot) {
  auto* driver = HCN_TRY(impl_->image_pool(image));
  HCN_TRY_STATUS(validate_name(snapshot, "snapshot name"));
  return driver->snapshot_create(image.name, std::string(snapshot));
}

Result<std::vector<SnapshotInfo>> ImageService::snapshot_list(const ImageRef& image) {
  auto* driver = HCN_TRY(impl_->image_pool(image));
  return driver->snapshot_list(image.name);
}

Status ImageService::snapshot_remove(const ImageRef& image, std::string_view snapshot) {
  auto* driver = HCN_TRY(impl_->image_pool(image));
  HCN_TRY_STATUS(validate_name(snapshot, "snapshot name"));
  return driver->snapshot_remove(image.name, std::string(snapshot));
}

Status ImageService::snapshot_rollback(const ImageRef& image, std::string_view snapshot,
                                       const ProgressFn& progress) {
  auto* driver = HCN_TRY(impl_->image_pool(image));
  HCN_TRY_STATUS(validate_name(snapshot, "snapshot name"));
  return driver->snapshot_rollback(image.name, std::string(snapshot), progress);
}

}  // namespace hcnode::storage
