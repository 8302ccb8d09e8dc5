// The file pool driver (gluster and dir pools): raw and qcow2 image files in one directory,
// golden images as read-only files, clones as qcow2 v3 overlays with a relative backing file.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <mutex>
#include <set>

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "blockdev/open_backend.hpp"
#include "blockdev/qcow2/qcow2_format.hpp"
#include "blockdev/sync_disk.hpp"
#include "storage/copy.hpp"
#include "storage/file/file_tree.hpp"
#include "storage/pool_driver.hpp"

namespace hcnode::storage {

namespace {

namespace qcow2 = blockdev::qcow2;
using blockdev::ImageFormat;

constexpr std::string_view kRawExt = ".raw";
constexpr std::string_view kQcow2Ext = ".qcow2";
constexpr std::string_view kTempMarker = ".tmp-";
constexpr mode_t kWritableMode = 0644;
constexpr mode_t kGoldenMode = 0444;

const char* ext_of(ImageFormat format) {
  return format == ImageFormat::kQcow2 ? ".qcow2" : ".raw";
}

bool is_temp_file(std::string_view file) {
  return file.starts_with('.') && file.find(kTempMarker) != std::string_view::npos;
}

bool is_unsupported(int code) { return code == ENOTSUP || code == EOPNOTSUPP; }

// An image file found in the pool directory.
struct Found {
  std::string name;  // image name (file name without extension)
  std::string file;  // file name in the pool directory
  ImageFormat format = ImageFormat::kRaw;
  FileStat stat;
};

Error snapshots_unsupported() {
  return make_error(EOPNOTSUPP,
                    "snapshots of qcow2 images are not supported yet; clone the golden image "
                    "instead");
}

class FileDriver;

class FilePending final : public PendingImage {
 public:
  FilePending(FileDriver& driver, std::string temp_path, std::string name, uint64_t size,
              blockdev::DiskUri uri)
      : driver_(driver),
        temp_path_(std::move(temp_path)),
        name_(std::move(name)),
        size_(size),
        uri_(std::move(uri)) {}
  ~FilePending() override;

  const blockdev::DiskUri& uri() const override { return uri_; }
  uint64_t size() const override { return size_; }
  Status resize(uint64_t new_size) override;
  Status commit() override;

 private:
  FileDriver& driver_;
  std::string temp_path_;
  std::string name_;
  uint64_t size_;
  blockdev::DiskUri uri_;
  bool committed_ = false;
};

class FileDriver final : public PoolDriver {
 public:
  FileDriver(PoolConfig config, std::shared_ptr<blockdev::StorageSessions> sessions)
      : config_(std::move(config)), sessions_(std::move(sessions)) {
    if (const auto* g = std::get_if<GlusterPool>(&config_.location)) {
      dir_ = g->dir;
      tree_ = make_glfs_tree(*g, sessions_);
    } else {
      dir_ = std::get<DirPool>(config_.location).path;
      tree_ = make_local_tree();
    }
  }

  const PoolConfig& config() const override { return config_; }
  FileTree& tree() { return *tree_; }
  std::string ref(const std::string& name) const { return config_.name + "/" + name; }
  std::string path(const std::string& file) const {
    return (dir_ == "/" ? "" : dir_) + "/" + file;
  }

  // The pool directory is made on the first write (a failure is retried next time: the volume
  // may have been unreachable).
  Status ensure_dir() {
    std::lock_guard lock(dir_mu_);
    if (!dir_made_) {
      HCN_TRY_STATUS(tree_->mkdir_p(dir_));
      dir_made_ = true;
    }
    return {};
  }

  // --- lookup ---------------------------------------------------------------------------------

  // An image is NAME.raw or NAME.qcow2. Both exist only after a flatten that was interrupted
  // between renaming the flat copy into place and unlinking the overlay: the raw file is the
  // finished state and wins.
  Result<std::optional<Found>> find(const std::string& name) {
    for (ImageFormat format : {ImageFormat::kRaw, ImageFormat::kQcow2}) {
      std::string file = name + ext_of(format);
      auto st = tree_->stat(path(file));
      if (st) {
        return std::optional<Found>(Found{name, file, format, *st});
      }
      if (st.error().code() != ENOENT) return fail(st.error());
    }
    return std::optional<Found>();
  }

  Result<Found> require(const std::string& name) {
    auto found = HCN_TRY(find(name));
    if (!found) return fail(ENOENT, fmt::format("image {} does not exist", ref(name)));
    return *found;
  }

  Result<qcow2::Header> read_header(const std::string& file) {
    auto f = HCN_TRY(tree_->open(path(file), O_RDONLY));
    const uint64_t file_size = HCN_TRY(f->stat()).size;
    uint64_t want = std::min<uint64_t>(file_size, 64 * 1024);
    for (int attempt = 0; attempt < 2; ++attempt) {
      std::vector<uint8_t> bytes(want);
      HCN_TRY_STATUS(f->pread_all(bytes.data(), bytes.size(), 0));
      auto header = qcow2::parse_header(bytes);
      if (header) return header;
      if (header.error().code() != EAGAIN) {
        return fail(header.error().wrap(fmt::format("qcow2 header of {}", path(file))));
      }
      want = std::min<uint64_t>(file_size, HCN_TRY(qcow2::header_bytes_needed(bytes)));
    }
    return fail(EINVAL, fmt::format("qcow2 header of {}: extensions out of reach", path(file)));
  }

  uint64_t virtual_size_of(const Found& f, const std::optional<qcow2::Header>& header) {
    return f.format == ImageFormat::kQcow2 && header ? header->size : f.stat.size;
  }

  // "POOL/NAME" of a backing file stored relative to the pool directory (the only kind hcnode
  // writes); nullopt for anything else (absolute paths, URIs, files of other tools).
  std::optional<std::string> backing_image(const std::string& backing_file) {
    if (backing_file.empty() || backing_file.find('/') != std::string::npos ||
        backing_file.find(':') != std::string::npos) {
      return std::nullopt;
    }
    for (std::string_view ext : {kRawExt, kQcow2Ext}) {
      if (backing_file.ends_with(ext) && backing_file.size() > ext.size()) {
        return backing_file.substr(0, backing_file.size() - ext.size());
      }
    }
    return std::nullopt;
  }

  std::optional<std::string> parent_text(const qcow2::Header& header) {
    if (header.backing_file.empty()) return std::nullopt;
    if (auto name = backing_image(header.backing_file)) return ref(*name);
    return header.backing_file;
  }

  bool refers_to(const std::string& backing_file, const Found& image) {
    return backing_file == image.file || backing_file == path(image.file) ||
           backing_file == tree_->uri_of(path(image.file)).to_string();
  }

  // Overlays in this pool whose backing file is `image`.
  Result<std::vector<std::string>> children_of(const Found& image) {
    std::vector<std::string> out;
    for (const auto& e : HCN_TRY(entries())) {
      if (!e.stat.regular || !e.name.ends_with(kQcow2Ext)) continue;
      auto header = read_header(e.name);
      if (!header) continue;  // not ours to judge here; info() of that image reports it
      if (refers_to(header->backing_file, image)) {
        out.push_back(ref(e.name.substr(0, e.name.size() - kQcow2Ext.size())));
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  // The directory's entries; none if the directory does not exist yet.
  Result<std::vector<DirEntry>> entries() {
    auto list = tree_->list_dir(dir_);
    if (!list && list.error().code() == ENOENT) return std::vector<DirEntry>();
    return list;
  }

  std::string sidecar(const std::string& name) const { return path("." + name + ".golden"); }

  Result<bool> is_golden(const Found& f) {
    auto x = tree_->get_xattr(path(f.file), std::string(kGoldenXattr));
    if (x && x->has_value()) return true;
    if (!x && !is_unsupported(x.error().code())) return fail(x.error());
    auto st = tree_->stat(sidecar(f.name));
    if (st) return true;
    if (st.error().code() != ENOENT) return fail(st.error());
    return false;
  }

  // --- queries --------------------------------------------------------------------------------

  Result<PoolSpace> space() override {
    // The pool directory may not exist yet: ask the nearest existing ancestor.
    std::string p = dir_;
    for (;;) {
      auto space = tree_->statvfs(p);
      if (space || space.error().code() != ENOENT || p == "/") return space;
      auto slash = p.rfind('/');
      p = slash == 0 ? "/" : p.substr(0, slash);
    }
  }

  Result<ImageService::Location> locate(const std::string& name,
                                        const std::optional<std::string>& snapshot) override {
    if (snapshot) return fail(snapshots_unsupported());
    auto f = HCN_TRY(require(name));
    return ImageService::Location{tree_->uri_of(path(f.file)), f.format};
  }

  Result<bool> exists(const std::string& name) override {
    return HCN_TRY(find(name)).has_value();
  }

  Result<std::vector<ImageSummary>> list(const ListOptions& options) override {
    std::vector<ImageSummary> out;
    std::set<std::string> seen;
    auto all = HCN_TRY(entries());
    // .raw sorts before .qcow2 for the same name only by luck; make the preference explicit.
    std::stable_sort(all.begin(), all.end(), [](const DirEntry& a, const DirEntry& b) {
      return a.name.ends_with(kRawExt) && !b.name.ends_with(kRawExt);
    });
    for (const auto& e : all) {
      if (!e.stat.regular) continue;
      const bool temp = is_temp_file(e.name);
      if (temp && !options.include_incomplete) continue;
      if (!temp && e.name.starts_with('.')) continue;  // golden sidecars
      ImageSummary s;
      s.pool = config_.name;
      Found f;
      if (temp) {
        s.name = e.name;
        s.size = e.stat.size;
        s.incomplete = "the temporary of an operation that did not finish";
        out.push_back(std::move(s));
        continue;
      }
      if (e.name.ends_with(kRawExt)) {
        f = Found{e.name.substr(0, e.name.size() - kRawExt.size()), e.name, ImageFormat::kRaw,
                  e.stat};
      } else if (e.name.ends_with(kQcow2Ext)) {
        f = Found{e.name.substr(0, e.name.size() - kQcow2Ext.size()), e.name, ImageFormat::kQcow2,
                  e.stat};
      } else {
        continue;  // not an image file
      }
      if (!seen.insert(f.name).second) continue;
      s.name = f.name;
      s.format = f.format;
      if (f.format == ImageFormat::kQcow2) {
        auto header = read_header(f.file);
        if (!header) {
          spdlog::warn("list {}: {}", ref(f.name), header.error().message());
          continue;
        }
        s.size = header->size;
        s.parent = parent_text(*header);
      } else {
        s.size = f.stat.size;
      }
      s.golden = HCN_TRY(is_golden(f));
      out.push_back(std::move(s));
    }
    std::sort(out.begin(), out.end(),
              [](const ImageSummary& a, const ImageSummary& b) { return a.name < b.name; });
    return out;
  }

  Result<ImageInfo> info(const std::string& name) override {
    auto f = HCN_TRY(require(name));
    ImageInfo info;
    info.pool = config_.name;
    info.name = name;
    info.pool_kind = config_.kind();
    info.uri = tree_->uri_of(path(f.file)).to_string();
    info.format = f.format;
    info.used = f.stat.allocated;
    info.read_only = (f.stat.mode & 0222) == 0;
    info.golden = HCN_TRY(is_golden(f));
    info.children = HCN_TRY(children_of(f));
    if (f.format == ImageFormat::kQcow2) {
      auto header = HCN_TRY(read_header(f.file));
      info.size = header.size;
      info.parent = parent_text(header);
      info.backing_chain = HCN_TRY(backing_chain(header));
    } else {
      info.size = f.stat.size;
    }
    return info;
  }

  // Layers below an overlay, following backing files that are images of this pool.
  Result<std::vector<BackingLayer>> backing_chain(qcow2::Header header) {
    std::vector<BackingLayer> chain;
    std::set<std::string> visited;
    while (!header.backing_file.empty()) {
      BackingLayer layer;
      layer.backing_file = header.backing_file;
      layer.format = header.backing_format;
      auto name = backing_image(header.backing_file);
      if (!name) {
        chain.push_back(std::move(layer));  // outside the pool: reported as stored
        break;
      }
      layer.image = ref(*name);
      layer.uri = tree_->uri_of(path(header.backing_file)).to_string();
      chain.push_back(layer);
      if (!visited.insert(*name).second) {
        return fail(ELOOP, fmt::format("backing chain of {} loops at {}", ref(*name), *layer.image));
      }
      if (!header.backing_file.ends_with(kQcow2Ext)) break;
      auto next = read_header(header.backing_file);
      if (!next) break;  // a missing layer shows as the last entry
      header = std::move(*next);
    }
    return chain;
  }

  Result<std::vector<DuEntry>> du(const std::optional<std::string>& name) override {
    std::vector<DuEntry> out;
    if (name) {
      auto f = HCN_TRY(require(*name));
      std::optional<qcow2::Header> header;
      if (f.format == ImageFormat::kQcow2) header = HCN_TRY(read_header(f.file));
      out.push_back(DuEntry{*name, virtual_size_of(f, header), f.stat.allocated});
      return out;
    }
    for (const auto& s : HCN_TRY(list({}))) {
      auto f = find(s.name);
      if (!f || !*f) continue;
      out.push_back(DuEntry{s.name, s.size, (*f)->stat.allocated});
    }
    return out;
  }

  // --- creating -------------------------------------------------------------------------------

  std::string temp_file(const std::string& name, ImageFormat format) const {
    return "." + name + ext_of(format) + std::string(kTempMarker) + random_suffix();
  }

  // The final name must still be free (both extensions), then the atomic rename.
  Status publish(const std::string& temp_path, const std::string& name, ImageFormat format) {
    if (HCN_TRY(find(name))) {
      return fail(EEXIST, fmt::format("image {} already exists", ref(name)));
    }
    auto renamed = tree_->rename_noreplace(temp_path, path(name + ext_of(format)));
    if (!renamed && renamed.error().code() == EEXIST) {
      return fail(EEXIST, fmt::format("image {} already exists", ref(name)));
    }
    return renamed;
  }

  Result<std::unique_ptr<PendingImage>> begin_image(const std::string& name,
                                                    uint64_t size) override {
    HCN_TRY_STATUS(ensure_dir());
    const std::string temp = path(temp_file(name, ImageFormat::kRaw));
    {
      auto file = HCN_TRY(tree_->create_exclusive(temp, kWritableMode));
      auto sized = file->truncate(size);
      if (!sized) {
        (void)tree_->unlink(temp);
        return fail(sized.error());
      }
    }
    return std::unique_ptr<PendingImage>(
        std::make_unique<FilePending>(*this, temp, name, size, tree_->uri_of(temp)));
  }

  // keep_qcow2 imports: the source file's bytes as they are (zero chunks left as holes).
  Status import_qcow2_file(const std::string& name, int fd, uint64_t file_size,
                           const ProgressFn& progress) {
    HCN_TRY_STATUS(ensure_dir());
    const std::string temp = path(temp_file(name, ImageFormat::kQcow2));
    auto status = [&]() -> Status {
      auto file = HCN_TRY(tree_->create_exclusive(temp, kWritableMode));
      AlignedBuffer buf(kCopyChunk);
      uint64_t done = 0;
      while (done < file_size) {
        const size_t len = static_cast<size_t>(std::min<uint64_t>(kCopyChunk, file_size - done));
        ssize_t got = ::pread(fd, buf.data(), len, static_cast<off_t>(done));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return fail(got < 0 ? from_errno("read source") : make_error(EIO, "source shrank"));
        std::span<const uint8_t> chunk(buf.data(), static_cast<size_t>(got));
        if (!is_all_zero(chunk)) HCN_TRY_STATUS(file->pwrite_all(chunk.data(), chunk.size(), done));
        done += static_cast<uint64_t>(got);
        HCN_TRY_STATUS(report_progress(progress, done, file_size));
      }
      HCN_TRY_STATUS(file->truncate(file_size));
      HCN_TRY_STATUS(file->fsync());
      return {};
    }();
    if (status) status = publish(temp, name, ImageFormat::kQcow2);
    if (!status) (void)tree_->unlink(temp);
    return status;
  }

  Result<ImageInfo> clone(const std::string& source, const std::optional<std::string>& snapshot,
                          PoolDriver& dest, const std::string& clone_name) override {
    if (snapshot) return fail(snapshots_unsupported());
    if (&dest != this) {
      return fail(EINVAL, fmt::format("clone of {} into pool {}: qcow2 clones live in the pool of "
                                      "their golden image (the backing file is named relative "
                                      "to it)",
                                      ref(source), dest.config().name));
    }
    auto f = HCN_TRY(require(source));
    if (!HCN_TRY(is_golden(f))) {
      return fail(EINVAL, fmt::format("image {} is not golden: mark it golden first (hcctl image "
                                      "golden mark {}) — clones read it as their backing file, so it "
                                      "must never change",
                                      ref(source), ref(source)));
    }
    if (HCN_TRY(find(clone_name))) {
      return fail(EEXIST, fmt::format("image {} already exists", ref(clone_name)));
    }
    std::optional<qcow2::Header> header;
    if (f.format == ImageFormat::kQcow2) header = HCN_TRY(read_header(f.file));
    qcow2::NewImage spec;
    spec.virtual_size = virtual_size_of(f, header);
    spec.backing_file = f.file;  // relative: the pool directory can move or be mounted elsewhere
    spec.backing_format = f.format == ImageFormat::kQcow2 ? "qcow2" : "raw";
    auto bytes = HCN_TRY(qcow2::format_new_image(spec));

    // Written under a hidden temporary name, synced, then renamed: an interrupted clone never
    // leaves a half-written overlay under a valid name.
    HCN_TRY_STATUS(ensure_dir());
    const std::string temp = path(temp_file(clone_name, ImageFormat::kQcow2));
    uint64_t allocated = 0;
    auto status = [&]() -> Status {
      auto file = HCN_TRY(tree_->create_exclusive(temp, kWritableMode));
      HCN_TRY_STATUS(file->pwrite_all(bytes.data(), bytes.size(), 0));
      HCN_TRY_STATUS(file->fsync());
      if (auto st = file->stat()) allocated = st->allocated;
      return {};
    }();
    if (status) status = publish(temp, clone_name, ImageFormat::kQcow2);
    if (!status) {
      (void)tree_->unlink(temp);
      return fail(status.error());
    }

    // What we just wrote, without info()'s scan of the pool for children (a new clone has none).
    ImageInfo info;
    info.pool = config_.name;
    info.name = clone_name;
    info.pool_kind = config_.kind();
    info.uri = tree_->uri_of(path(clone_name + ext_of(ImageFormat::kQcow2))).to_string();
    info.format = ImageFormat::kQcow2;
    info.size = spec.virtual_size;
    info.used = allocated;
    info.parent = ref(source);
    qcow2::Header overlay;
    overlay.backing_file = spec.backing_file;
    overlay.backing_format = spec.backing_format;
    info.backing_chain = HCN_TRY(backing_chain(std::move(overlay)));
    return info;
  }

  Status flatten(const std::string& name, const ProgressFn& progress) override {
    auto f = HCN_TRY(require(name));
    if (f.format != ImageFormat::kQcow2) return {};  // raw files have no parent
    auto header = HCN_TRY(read_header(f.file));
    if (header.backing_file.empty()) return {};
    auto children = HCN_TRY(children_of(f));
    if (!children.empty()) {
      std::string list;
      for (const auto& c : children) list += (list.empty() ? "" : ", ") + c;
      return fail(EBUSY, fmt::format("cannot flatten {}: its clones ({}) name {} as their backing "
                                     "file; flatten or remove them first",
                                     ref(name), list, f.file));
    }
    const bool golden = HCN_TRY(is_golden(f));
    HCN_TRY_STATUS(ensure_dir());
    // Every virtual byte through the qcow2 layer (backing chain included) into a new raw file.
    const std::string temp = path(temp_file(name, ImageFormat::kRaw));
    auto status = [&]() -> Status {
      {
        auto file = HCN_TRY(tree_->create_exclusive(temp, kWritableMode));
        HCN_TRY_STATUS(file->truncate(header.size));
      }
      blockdev::BackendOptions src_opts;
      src_opts.read_only = true;
      src_opts.format = ImageFormat::kQcow2;
      auto src_backend =
          HCN_TRY(blockdev::open_backend(tree_->uri_of(path(f.file)), src_opts, *sessions_));
      auto src = HCN_TRY(blockdev::SyncDisk::open(std::move(src_backend)));
      auto dst_backend = HCN_TRY(blockdev::open_backend(tree_->uri_of(temp), {}, *sessions_));
      auto dst = HCN_TRY(blockdev::SyncDisk::open(std::move(dst_backend)));
      return copy_disk_to_disk(src, dst, header.size, progress);  // flushes dst
    }();
    // The raw copy becomes NAME.raw (lookup prefers it from this moment on), then the overlay
    // goes; a crash in between leaves a stale overlay that list() and info() ignore.
    if (status) {
      auto renamed = tree_->rename_noreplace(temp, path(name + ext_of(ImageFormat::kRaw)));
      if (!renamed) status = renamed;
    }
    if (!status) {
      (void)tree_->unlink(temp);
      return status;
    }
    if (auto gone = tree_->unlink(path(f.file)); !gone) {
      spdlog::warn("flatten {}: the flat copy is in place, but the old overlay {} could not be "
                   "removed: {}",
                   ref(name), f.file, gone.error().message());
    }
    if (golden) {
      HCN_TRY_STATUS(mark_golden(name));
    }
    return {};
  }

  Status resize(const std::string& name, uint64_t new_size,
                const ResizeOptions& options) override {
    auto f = HCN_TRY(require(name));
    if (HCN_TRY(is_golden(f))) {
      return fail(EBUSY, fmt::format("image {} is golden: unmark it first (its clones would read "
                                     "past their own size)",
                                     ref(name)));
    }
    if (f.format == ImageFormat::kQcow2) {
      return fail(EOPNOTSUPP, fmt::format("resizing qcow2 image {} is not supported yet: flatten "
                                          "it (it becomes raw), then resize",
                                          ref(name)));
    }
    if (new_size < f.stat.size && !options.allow_shrink) {
      return fail(EINVAL, fmt::format("shrinking {} from {} to {} bytes drops the data at its end: "
                                      "allow shrinking explicitly (--allow-shrink)",
                                      ref(name), f.stat.size, new_size));
    }
    HCN_TRY_STATUS(report_progress(options.progress, 0, new_size));
    auto file = HCN_TRY(tree_->open(path(f.file), O_RDWR));
    HCN_TRY_STATUS(file->truncate(new_size));
    HCN_TRY_STATUS(file->fsync());
    return report_progress(options.progress, new_size, new_size);
  }

  Status remove(const std::string& name, const ProgressFn& progress) override {
    auto f = HCN_TRY(require(name));
    HCN_TRY_STATUS(report_progress(progress, 0, 1));
    HCN_TRY_STATUS(tree_->unlink(path(f.file)));
    // A stale overlay left by an interrupted flatten goes with its image.
    if (f.format == ImageFormat::kRaw) {
      auto stale = tree_->unlink(path(name + ext_of(ImageFormat::kQcow2)));
      (void)stale;
    }
    (void)tree_->unlink(sidecar(name));
    return report_progress(progress, 1, 1);
  }

  Result<std::vector<std::string>> purge_incomplete(std::chrono::seconds min_age) override {
    std::vector<std::string> removed;
    const int64_t now = static_cast<int64_t>(std::time(nullptr));
    for (const auto& e : HCN_TRY(entries())) {
      if (!is_temp_file(e.name) || now - e.stat.mtime < min_age.count()) continue;
      if (auto r = tree_->unlink(path(e.name)); !r) {
        spdlog::warn("purge {}: {}", path(e.name), r.error().message());
        continue;
      }
      removed.push_back(e.name);
    }
    return removed;
  }

  // --- golden ---------------------------------------------------------------------------------

  Status mark_golden(const std::string& name) override {
    auto f = HCN_TRY(require(name));
    // Read-only first, mark second: a crash in between leaves a read-only image that clone()
    // still refuses (not golden) — never a golden image that can be written.
    HCN_TRY_STATUS(tree_->chmod(path(f.file), kGoldenMode));
    const std::string stamp = std::to_string(std::time(nullptr));
    auto x = tree_->set_xattr(path(f.file), std::string(kGoldenXattr), stamp);
    if (x) return {};
    if (!is_unsupported(x.error().code())) return x;
    // No user xattrs on this file system: a sidecar file marks it.
    spdlog::info("{}: no user xattrs, marking golden with {}", ref(name), sidecar(name));
    auto marker = tree_->create_exclusive(sidecar(name), kGoldenMode);
    if (!marker && marker.error().code() != EEXIST) return fail(marker.error());
    return {};
  }

  Status unmark_golden(const std::string& name) override {
    auto f = HCN_TRY(require(name));
    auto x = tree_->remove_xattr(path(f.file), std::string(kGoldenXattr));
    if (!x && !is_unsupported(x.error().code())) return x;
    auto s = tree_->unlink(sidecar(name));
    if (!s && s.error().code() != ENOENT) return s;
    return tree_->chmod(path(f.file), kWritableMode);
  }

  // --- snapshots: not on file pools -----------------------------------------------------------

  Result<SnapshotInfo> snapshot_create(const std::string&, const std::string&) override {
    return fail(snapshots_unsupported());
  }
  Result<std::vector<SnapshotInfo>> snapshot_list(const std::string& name) override {
    HCN_TRY(require(name));
    return std::vector<SnapshotInfo>();  // an image without snapshots, honestly
  }
  Status snapshot_remove(const std::string&, const std::string&) override {
    return fail(snapshots_unsupported());
  }
  Status snapshot_rollback(const std::string&, const std::string&, const ProgressFn&) override {
    return fail(snapshots_unsupported());
  }

 private:
  PoolConfig config_;
  std::shared_ptr<blockdev::StorageSessions> sessions_;
  std::string dir_;
  std::unique_ptr<FileTree> tree_;
  std::mutex dir_mu_;
  bool dir_made_ = false;  // guarded by dir_mu_

  friend class FilePending;
};

FilePending::~FilePending() {
  if (!committed_) {
    if (auto r = driver_.tree().unlink(temp_path_); !r && r.error().code() != ENOENT) {
      spdlog::warn("could not remove temporary file {}: {} (nothing uses it: remove it by "
                   "hand)",
                   temp_path_, r.error().message());
    }
  }
}

Status FilePending::resize(uint64_t new_size) {
  auto file = HCN_TRY(driver_.tree().open(temp_path_, O_RDWR));
  HCN_TRY_STATUS(file->truncate(new_size));
  size_ = new_size;
  return {};
}

Status FilePending::commit() {
  HCN_TRY_STATUS(driver_.publish(temp_path_, name_, ImageFormat::kRaw));
  committed_ = true;
  return {};
}

}  // namespace

std::unique_ptr<PoolDriver> make_file_pool(const PoolConfig& config,
                                           std::shared_ptr<blockdev::StorageSessions> sessions) {
  return std::make_unique<FileDriver>(config, std::move(sessions));
}

Status import_qcow2_verbatim(PoolDriver& pool, const std::string& name, int fd, uint64_t size,
                             const ProgressFn& progress) {
  auto* file_pool = dynamic_cast<FileDriver*>(&pool);
  if (file_pool == nullptr) {
    return fail(EINVAL, "keeping qcow2 is only possible in gluster and dir pools (RBD images are "
                        "raw)");
  }
  return file_pool->import_qcow2_file(name, fd, size, progress);
}

}  // namespace hcnode::storage
