// The RBD pool driver: images, golden snapshots and clone v2 through librbd's C API.
#include <rbd/librbd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <mutex>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "blockdev/open_backend.hpp"
#include "blockdev/rbd/rados_handles.hpp"
#include "storage/rbd/clone_intents.hpp"
#include "storage/pool_driver.hpp"
#include "storage/rbd/rbd_image_options.hpp"

namespace hcnode::storage {

namespace {

using blockdev::RadosCluster;
using blockdev::RadosIoCtx;
using blockdev::RbdImage;
using blockdev::RbdLocation;

// Markers of temporary images (RBD names cannot hide behind a leading '.' as files do). Such
// names pass validate_name, so they are reserved by convention: list() and du() hide them and
// purge_incomplete() removes old ones. (`.creating-` temporaries were made by clones of
// earlier versions; clones now go straight to their name.)
constexpr std::string_view kImportingMarker = ".importing-";
constexpr std::string_view kCreatingMarker = ".creating-";

bool is_temp_name(std::string_view name) {
  return name.find(kImportingMarker) != std::string_view::npos ||
         name.find(kCreatingMarker) != std::string_view::npos;
}

// Bridges a ProgressFn to librbd_progress_fn_t. librbd calls it from the calling thread or from
// its own op threads (one at a time); a non-zero return makes librbd stop the operation.
struct ProgressBridge {
  const ProgressFn* fn = nullptr;
  bool cancelled = false;

  static int callback(uint64_t offset, uint64_t total, void* arg) {
    auto* self = static_cast<ProgressBridge*>(arg);
    if (self->fn != nullptr && *self->fn && !(*self->fn)(offset, total)) {
      self->cancelled = true;
      return -ECANCELED;
    }
    return 0;
  }
};

int no_progress(uint64_t, uint64_t, void*) { return 0; }

// rbd_features_to_string: "layering,exclusive-lock,…" split into names.
void feature_names(uint64_t features, std::vector<std::string>& out) {
  size_t len = 0;
  rbd_features_to_string(features, nullptr, &len);
  std::string text(len, '\0');
  if (rbd_features_to_string(features, text.data(), &len) == 0) {
    text.resize(std::strlen(text.c_str()));
    size_t start = 0;
    while (start < text.size()) {
      size_t comma = text.find(',', start);
      if (comma == std::string::npos) comma = text.size();
      out.push_back(text.substr(start, comma - start));
      start = comma + 1;
    }
  }
}

// rbd_aio_open_read_only of image@snap, closed by the destructor: lets a read-only open run
// while the calling thread does something else with librbd.
class AsyncOpen {
 public:
  AsyncOpen(rados_ioctx_t io, const std::string& name, const std::string& snap) {
    if (rbd_aio_create_completion(nullptr, nullptr, &completion_) < 0) {
      completion_ = nullptr;
      return;
    }
    if (rbd_aio_open_read_only(io, name.c_str(), &image_, snap.c_str(), completion_) < 0) {
      rbd_aio_release(completion_);
      completion_ = nullptr;
    }
  }
  ~AsyncOpen() {
    wait();
    if (result_ == 0 && image_ != nullptr) rbd_close(image_);
  }
  AsyncOpen(const AsyncOpen&) = delete;
  AsyncOpen& operator=(const AsyncOpen&) = delete;

  // 0 when the image is open, a negative errno otherwise.
  int wait() {
    if (completion_ != nullptr) {
      rbd_aio_wait_for_complete(completion_);
      result_ = static_cast<int>(rbd_aio_get_return_value(completion_));
      rbd_aio_release(completion_);
      completion_ = nullptr;
    }
    return result_;
  }
  rbd_image_t image() const { return image_; }

 private:
  rbd_completion_t completion_ = nullptr;
  rbd_image_t image_ = nullptr;
  int result_ = -EIO;
};

class RbdDriver;

class RbdPending final : public PendingImage {
 public:
  RbdPending(RbdDriver& driver, std::string temp, std::string final_name, uint64_t size,
             blockdev::DiskUri uri)
      : driver_(driver),
        temp_(std::move(temp)),
        final_(std::move(final_name)),
        size_(size),
        uri_(std::move(uri)) {}
  ~RbdPending() override;

  const blockdev::DiskUri& uri() const override { return uri_; }
  uint64_t size() const override { return size_; }
  Status resize(uint64_t new_size) override;
  Status commit() override;

 private:
  RbdDriver& driver_;
  std::string temp_;
  std::string final_;
  uint64_t size_;
  blockdev::DiskUri uri_;
  bool committed_ = false;
};

class RbdDriver final : public PoolDriver {
 public:
  RbdDriver(PoolConfig config, std::shared_ptr<blockdev::StorageSessions> sessions,
            const PoolDirectory& directory)
      : config_(std::move(config)),
        loc_(std::get<RbdPool>(config_.location)),
        sessions_(std::move(sessions)),
        directory_(directory) {}

  const PoolConfig& config() const override { return config_; }

  // The pool's IoCtx, created on first use (the rados client connects then).
  Result<rados_ioctx_t> io() {
    std::lock_guard lock(mu_);
    if (!io_) {
      auto cluster = with_context(sessions_->rados(), "pool " + config_.name);
      if (!cluster) return fail(cluster.error());
      auto io = RadosIoCtx::create(**cluster, loc_.pool, loc_.ns);
      if (!io) return fail(io.error().wrap("pool " + config_.name));
      cluster_ = *cluster;
      io_.emplace(std::move(*io));
    }
    return io_->get();
  }

  std::string ref(const std::string& name) const { return config_.name + "/" + name; }

  blockdev::DiskUri uri_of(const std::string& name,
                           const std::optional<std::string>& snap = std::nullopt) const {
    return blockdev::DiskUri{RbdLocation{loc_.pool, loc_.ns, name, snap}};
  }

  Result<RbdImage> open(const std::string& name, bool read_only,
                        const std::optional<std::string>& snap = std::nullopt) {
    HCN_TRY(io());
    auto image = RbdImage::open(*io_, name, snap, read_only);  // io_ never changes once set
    if (!image && image.error().code() == ENOENT) {
      if (snap) {
        return fail(ENOENT, fmt::format("snapshot {}@{} does not exist", ref(name), *snap));
      }
      return fail(ENOENT, fmt::format("image {} does not exist", ref(name)));
    }
    if (!image) return fail(image.error().wrap("pool " + config_.name));
    return image;
  }

  // --- interrupted clones (clone_intents.hpp) -------------------------------------------------

  Result<CloneIntents> intents() { return CloneIntents(HCN_TRY(io())); }
  // The records of one image (or of the pool).
  Result<std::vector<CloneIntent>> clone_records(const std::string* name = nullptr) {
    auto records = HCN_TRY(intents());
    return records.list(name);
  }

  // Why `image` (named `name`) is an interrupted clone, or nullopt when it is complete. A record
  // counts only for an image created after the recorded clone began (2 s of clock slack; the
  // record and the image's timestamp both come from the cloning client's clock): a clone that
  // was killed while failing against an existing name must not condemn that image.
  static std::optional<std::string> incomplete_reason(const std::vector<CloneIntent>& records,
                                                      const std::string& name,
                                                      const RbdImage& image) {
    timespec created{};
    const bool have_time = rbd_get_create_timestamp(image.get(), &created) == 0;
    for (const auto& r : records) {
      if (r.name != name) continue;
      if (!have_time || created.tv_sec >= r.started - 2) return r.describe();
    }
    return std::nullopt;
  }

  Result<std::optional<std::string>> incomplete_reason(const std::string& name,
                                                       const RbdImage& image) {
    auto records = HCN_TRY(clone_records(&name));
    return incomplete_reason(records, name, image);
  }

  // --- queries --------------------------------------------------------------------------------

  Result<PoolSpace> space() override {
    HCN_TRY(io());
    std::shared_ptr<RadosCluster> cluster;
    {
      std::lock_guard lock(mu_);
      cluster = cluster_;
    }
    // `ceph df`: max_avail already accounts for the pool's replication and the fullest OSD.
    auto out = cluster->mon_command(R"({"prefix":"df","format":"json"})");
    if (out) {
      auto doc = nlohmann::json::parse(*out, nullptr, false);
      if (doc.is_object() && doc.contains("pools")) {
        for (const auto& p : doc["pools"]) {
          if (p.value("name", "") == loc_.pool && p.contains("stats")) {
            const auto& st = p["stats"];
            PoolSpace space;
            space.free = st.value("max_avail", uint64_t{0});
            space.total = space.free + st.value("stored", uint64_t{0});
            return space;
          }
        }
      }
    }
    // Without `df` rights: the cluster's raw capacity (replication not counted).
    rados_cluster_stat_t st{};
    if (int r = rados_cluster_stat(cluster->get(), &st); r < 0) {
      return fail(from_negative_errno(r, "rados_cluster_stat"));
    }
    return PoolSpace{st.kb * 1024, st.kb_avail * 1024};
  }

  Result<ImageService::Location> locate(const std::string& name,
                                        const std::optional<std::string>& snap) override {
    auto image = HCN_TRY(open(name, /*read_only=*/true, snap));
    if (auto why = HCN_TRY(incomplete_reason(name, image))) {
      return fail(EUCLEAN, fmt::format("image {} is incomplete ({}): remove it (hcctl image rm {}) "
                                       "and clone again",
                                       ref(name), *why, ref(name)));
    }
    return ImageService::Location{uri_of(name, snap), blockdev::ImageFormat::kRaw};
  }

  Result<bool> exists(const std::string& name) override {
    auto image = open(name, true);
    if (image) return true;
    if (image.error().code() == ENOENT) return false;
    return fail(image.error());
  }

  Result<std::vector<std::string>> image_names() {
    rados_ioctx_t io_handle = HCN_TRY(io());
    size_t max = 64;
    for (;;) {
      std::vector<rbd_image_spec_t> specs(max);
      int r = rbd_list2(io_handle, specs.data(), &max);
      if (r == -ERANGE) continue;  // max now holds the count needed
      if (r < 0) return fail(from_negative_errno(r, "rbd_list2 pool " + config_.name));
      std::vector<std::string> names;
      for (size_t i = 0; i < max; ++i) names.emplace_back(specs[i].name);
      rbd_image_spec_list_cleanup(specs.data(), max);
      std::sort(names.begin(), names.end());
      return names;
    }
  }

  Result<std::vector<ImageSummary>> list(const ListOptions& options) override {
    std::vector<ImageSummary> out;
    const auto records = HCN_TRY(clone_records());
    for (const auto& name : HCN_TRY(image_names())) {
      if (is_temp_name(name) && !options.include_incomplete) continue;
      auto image = open(name, true);
      if (!image) {
        const bool recorded = std::any_of(records.begin(), records.end(),
                                          [&](const CloneIntent& r) { return r.name == name; });
        if (recorded) {  // a clone killed before librbd finished its header
          if (options.include_incomplete) {
            ImageSummary s;
            s.pool = config_.name;
            s.name = name;
            s.incomplete = "a clone that did not finish (the image does not open: " +
                           image.error().message() + ")";
            out.push_back(std::move(s));
          }
          continue;
        }
        if (image.error().code() == ENOENT) continue;  // removed since rbd_list2
        return fail(image.error());
      }
      auto why = incomplete_reason(records, name, *image);
      if (is_temp_name(name)) why = "an import that did not finish";
      if (why && !options.include_incomplete) continue;
      ImageSummary s;
      s.incomplete = std::move(why);
      s.pool = config_.name;
      s.name = name;
      s.size = HCN_TRY(image->size());
      s.parent = HCN_TRY(parent_of(*image));
      s.golden = HCN_TRY(is_golden(*image));
      out.push_back(std::move(s));
    }
    return out;
  }

  Result<ImageInfo> info(const std::string& name) override {
    auto opened = open(name, true);
    if (!opened) {
      // A clone killed before librbd wrote its header: its name is taken, it does not open.
      if (opened.error().code() != ENOENT) return fail(opened.error());
      auto records = HCN_TRY(clone_records(&name));
      if (records.empty()) return fail(opened.error());
      const auto names = HCN_TRY(image_names());  // rare: only an unopenable recorded name
      if (!std::binary_search(names.begin(), names.end(), name)) return fail(opened.error());
      ImageInfo info;
      info.pool = config_.name;
      info.name = name;
      info.pool_kind = PoolKind::kRbd;
      info.uri = uri_of(name).to_string();
      info.incomplete = records.front().describe() + " (the image does not open)";
      return info;
    }
    auto image = std::move(*opened);
    ImageInfo info;
    info.pool = config_.name;
    info.name = name;
    info.pool_kind = PoolKind::kRbd;
    info.uri = uri_of(name).to_string();
    info.format = blockdev::ImageFormat::kRaw;
    info.size = HCN_TRY(image.size());
    info.parent = HCN_TRY(parent_of(image));
    info.golden = HCN_TRY(is_golden(image));
    info.incomplete = HCN_TRY(incomplete_reason(name, image));
    uint64_t features = 0;
    if (int r = rbd_get_features(image.get(), &features); r < 0) {
      return fail(from_negative_errno(r, "rbd_get_features " + ref(name)));
    }
    feature_names(features, info.features);
    info.snapshots = HCN_TRY(snapshots_of(image, name));
    std::set<std::string> children;
    for (const auto& s : info.snapshots) children.insert(s.children.begin(), s.children.end());
    info.children.assign(children.begin(), children.end());
    info.used = HCN_TRY(used_bytes(image, info.size));
    return info;
  }

  Result<std::vector<DuEntry>> du(const std::optional<std::string>& name) override {
    std::vector<std::string> names;
    std::vector<CloneIntent> records;
    if (name) {
      names.push_back(*name);
    } else {
      records = HCN_TRY(clone_records());
      for (auto& n : HCN_TRY(image_names())) {
        if (!is_temp_name(n)) names.push_back(std::move(n));
      }
    }
    std::vector<DuEntry> out;
    for (const auto& n : names) {
      auto image = open(n, true);
      if (!image) {
        if (!name && image.error().code() == ENOENT) continue;
        return fail(image.error());
      }
      if (!name && incomplete_reason(records, n, *image)) continue;  // as list() hides them
      DuEntry e;
      e.name = n;
      e.provisioned = HCN_TRY(image->size());
      e.used = HCN_TRY(used_bytes(*image, e.provisioned));
      out.push_back(std::move(e));
    }
    return out;
  }

  // --- creating -------------------------------------------------------------------------------

  Status create_raw(const std::string& name, uint64_t size) {
    rados_ioctx_t io_handle = HCN_TRY(io());
    auto opts = HCN_TRY(RbdImageOptions::standard(/*clone=*/false));
    int r = rbd_create4(io_handle, name.c_str(), size, opts.get());
    if (r == -EEXIST) return fail(EEXIST, fmt::format("image {} already exists", ref(name)));
    if (r < 0) return fail(from_negative_errno(r, "rbd_create4 " + ref(name)));
    return {};
  }

  Result<std::unique_ptr<PendingImage>> begin_image(const std::string& name,
                                                    uint64_t size) override {
    // RBD names cannot hide behind a leading '.', so the temporary carries a marker instead;
    // rbd_rename at commit is atomic (one directory object update).
    std::string temp = name + std::string(kImportingMarker) + random_suffix();
    HCN_TRY_STATUS(create_raw(temp, size));
    return std::unique_ptr<PendingImage>(
        std::make_unique<RbdPending>(*this, temp, name, size, uri_of(temp)));
  }

  Status rename(const std::string& from, const std::string& to) {
    rados_ioctx_t io_handle = HCN_TRY(io());
    int r = rbd_rename(io_handle, from.c_str(), to.c_str());
    if (r == -EEXIST) return fail(EEXIST, fmt::format("image {} already exists", ref(to)));
    if (r < 0) return fail(from_negative_errno(r, fmt::format("rbd_rename {} -> {}", from, to)));
    return {};
  }

  Status remove_plain(const std::string& name, const ProgressFn* progress) {
    rados_ioctx_t io_handle = HCN_TRY(io());
    ProgressBridge bridge{progress};
    int r = rbd_remove_with_progress(io_handle, name.c_str(), &ProgressBridge::callback, &bridge);
    if (bridge.cancelled) return fail(ECANCELED, "remove " + ref(name) + ": cancelled");
    if (r == -EBUSY) {
      return fail(EBUSY, fmt::format("image {} is in use (a VM or another client has it open)",
                                     ref(name)));
    }
    if (r == -ENOTEMPTY) {
      return fail(ENOTEMPTY, fmt::format("image {} still has snapshots or clones", ref(name)));
    }
    if (r < 0) return fail(from_negative_errno(r, "rbd_remove " + ref(name)));
    return {};
  }

  // One rbd_clone3 call under the final name (librbd refuses a taken name and removes the child
  // again when a step fails; see "Atomicity" in image_service.hpp for a killed process), nothing
  // read back afterwards: the result is what is known without opening the clone. The clone's
  // size is the snapshot's, read from a read-only open of the source that runs concurrently
  // with the clone (no extra wall time). Errors are sorted out after a failure only.
  Result<ImageInfo> clone(const std::string& source, const std::optional<std::string>& snapshot,
                          PoolDriver& dest, const std::string& clone_name) override {
    auto* target = dynamic_cast<RbdDriver*>(&dest);
    if (target == nullptr) {
      return fail(EINVAL, fmt::format("clone of {}: an RBD image can only be cloned into an RBD "
                                      "pool (pool {} is {})",
                                      ref(source), dest.config().name,
                                      to_string(dest.config().kind())));
    }
    const std::string snap = snapshot.value_or(std::string(kGoldenSnapshot));
    rados_ioctx_t parent_io = HCN_TRY(io());
    rados_ioctx_t child_io = HCN_TRY(target->io());
    auto opts = HCN_TRY(RbdImageOptions::standard(/*clone=*/true));

    // The record goes first: a process killed inside rbd_clone3 leaves it behind, and the
    // half-made child is then known as incomplete (clone_intents.hpp).
    AsyncOpen source_snap(parent_io, source, snap);
    CloneIntents records(child_io);
    const std::string key = HCN_TRY(records.begin(clone_name, ref(source) + "@" + snap));
    int r = rbd_clone3(parent_io, source.c_str(), snap.c_str(), child_io, clone_name.c_str(),
                       opts.get());
    const int open_r = source_snap.wait();
    if (r == 0) {
      if (auto done = records.forget(clone_name); !done) {
        // Still recorded, the clone would count as incomplete: take it back (old state).
        (void)target->remove_plain(clone_name, nullptr);
        (void)records.abort(key);
        return fail(done.error().wrap("clone " + target->ref(clone_name)));
      }
    } else if (auto dropped = records.abort(key); !dropped) {
      spdlog::warn("{}", dropped.error().message());  // a stale record; purge drops it
    }
    if (r == -EEXIST) {
      return fail(EEXIST, fmt::format("image {} already exists", target->ref(clone_name)));
    }
    if (r == -ENOENT) {
      // The source image or its snapshot is missing: say which.
      {
        auto image = HCN_TRY(open(source, /*read_only=*/true));
        (void)image;
      }
      if (!snapshot) {
        return fail(EINVAL, fmt::format("image {} is not golden: mark it golden (hcctl image "
                                        "golden mark {}) or name a snapshot ({}@SNAP)",
                                        ref(source), ref(source), ref(source)));
      }
      return fail(ENOENT, fmt::format("snapshot {}@{} does not exist", ref(source), snap));
    }
    if (r < 0) {
      return fail(from_negative_errno(
          r, fmt::format("rbd_clone3 {}@{} -> {}", ref(source), snap, target->ref(clone_name))));
    }

    ImageInfo info;
    info.pool = target->config().name;
    info.name = clone_name;
    info.pool_kind = PoolKind::kRbd;
    info.uri = target->uri_of(clone_name).to_string();
    info.format = blockdev::ImageFormat::kRaw;
    info.parent = ref(source) + "@" + snap;
    // A clone v2 child also has the internal `operations` feature (op feature clone-child).
    feature_names(kRbdFeatures | RBD_FEATURE_OPERATIONS, info.features);
    if (open_r == 0 && rbd_get_size(source_snap.image(), &info.size) == 0) {
      return info;
    }
    // The concurrent open failed (it should not have, the clone worked): ask the clone itself.
    auto child = HCN_TRY(target->open(clone_name, /*read_only=*/true));
    info.size = HCN_TRY(child.size());
    return info;
  }

  Status flatten(const std::string& name, const ProgressFn& progress) override {
    auto image = HCN_TRY(open(name, false));
    if (!HCN_TRY(parent_of(image))) {
      return {};
    }
    drop_copied_mark(image);
    ProgressBridge bridge{&progress};
    int r = rbd_flatten_with_progress(image.get(), &ProgressBridge::callback, &bridge);
    if (bridge.cancelled) return fail(ECANCELED, "flatten " + ref(name) + ": cancelled");
    if (r < 0) return fail(from_negative_errno(r, "rbd_flatten " + ref(name)));
    return {};
  }

  Status resize(const std::string& name, uint64_t new_size,
                const ResizeOptions& options) override {
    auto image = HCN_TRY(open(name, false));
    if (HCN_TRY(is_golden(image))) {
      return fail(EBUSY, fmt::format("image {} is golden: unmark it first (its clones keep "
                                     "their own size)",
                                     ref(name)));
    }
    drop_copied_mark(image);
    const uint64_t current = HCN_TRY(image.size());
    if (new_size < current && !options.allow_shrink) {
      return fail(EINVAL, fmt::format("shrinking {} from {} to {} bytes drops the data at its end: "
                                      "allow shrinking explicitly (--allow-shrink)",
                                      ref(name), current, new_size));
    }
    ProgressBridge bridge{&options.progress};
    int r = rbd_resize2(image.get(), new_size, options.allow_shrink, &ProgressBridge::callback,
                        &bridge);
    if (bridge.cancelled) return fail(ECANCELED, "resize " + ref(name) + ": cancelled");
    if (r < 0) return fail(from_negative_errno(r, "rbd_resize2 " + ref(name)));
    return {};
  }

  Status remove(const std::string& name, const ProgressFn& progress) override {
    bool incomplete = false;
    {
      auto opened = open(name, false);
      if (!opened) {
        // A clone killed early may not open at all; rbd_remove still clears what it left.
        if (!HCN_TRY(clone_records(&name)).empty()) return remove_interrupted(name);
        return fail(opened.error());
      }
      auto image = std::move(*opened);
      incomplete = HCN_TRY(incomplete_reason(name, image)).has_value();
      HCN_TRY_STATUS(refuse_if_locked(image, name, "remove"));
      // Our own snapshots go first (rbd_remove refuses an image with snapshots). Any with
      // clones make this fail before anything is removed: the caller flattened those.
      auto snaps = HCN_TRY(snapshots_of(image, name));
      for (const auto& s : snaps) {
        if (!s.children.empty()) {
          return fail(ENOTEMPTY, fmt::format("image {}: snapshot {} has clones: {}", ref(name),
                                             s.name, join(s.children)));
        }
      }
      for (const auto& s : snaps) {
        int r = rbd_snap_remove2(image.get(), s.name.c_str(), RBD_SNAP_REMOVE_UNPROTECT,
                                 &no_progress, nullptr);
        if (r < 0 && r != -ENOENT) {
          return fail(from_negative_errno(r, fmt::format("rbd_snap_remove {}@{}", ref(name),
                                                         s.name)));
        }
      }
    }
    HCN_TRY_STATUS(incomplete ? remove_incomplete(name, &progress) : remove_plain(name, &progress));
    // An interrupted clone's records go with its image (a stale one would mark the next image
    // of that name incomplete until its own clone clears it).
    if (auto r = HCN_TRY(intents()).forget(name); !r) spdlog::warn("{}", r.error().message());
    return {};
  }

  // A clone killed inside rbd_clone3 had its child open: the OSDs keep that dead client's watch
  // on the image header until it times out (osd_client_watch_timeout, 30 s by default), and
  // rbd_remove refuses (EBUSY) until then. The image is nobody's: wait the watch out.
  Status remove_incomplete(const std::string& name, const ProgressFn* progress) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(45);
    for (bool told = false;; told = true) {
      auto removed = remove_plain(name, progress);
      if (removed || removed.error().code() != EBUSY ||
          std::chrono::steady_clock::now() >= deadline) {
        return removed;
      }
      if (!told) {
        spdlog::info("{}: waiting (up to 30 s) for the watch of the process that was cloning it "
                     "to expire", ref(name));
      }
      std::this_thread::sleep_for(std::chrono::seconds(2));
    }
  }

  Status remove_interrupted(const std::string& name) {
    auto removed = remove_incomplete(name, nullptr);
    if (!removed && removed.error().code() != ENOENT) return removed;
    return HCN_TRY(intents()).forget(name);
  }

  Result<std::vector<std::string>> purge_incomplete(std::chrono::seconds min_age) override {
    std::vector<std::string> removed;
    const int64_t now = static_cast<int64_t>(std::time(nullptr));
    for (const auto& name : HCN_TRY(image_names())) {
      if (!is_temp_name(name)) continue;
      auto image = open(name, true);
      if (!image) continue;
      timespec created{};
      if (rbd_get_create_timestamp(image->get(), &created) < 0) continue;
      if (now - created.tv_sec < min_age.count()) continue;
      {
        RbdImage closing = std::move(*image);  // closed before removal
      }
      if (auto r = remove_plain(name, nullptr); !r) {
        spdlog::warn("purge {}: {}", ref(name), r.error().message());
        continue;
      }
      removed.push_back(name);
    }
    // Interrupted clones: records older than min_age. The image goes only if it was made by
    // that clone (created after the record); otherwise only the stale record goes.
    auto records = HCN_TRY(intents());
    std::map<std::string, int64_t> newest;  // name -> newest record's start
    for (const auto& r : HCN_TRY(records.list())) {
      auto& t = newest[r.name];
      t = std::max(t, r.started);
    }
    for (const auto& [name, started] : newest) {
      if (now - started < min_age.count()) continue;  // maybe still running
      auto image = open(name, true);
      if (!image && image.error().code() != ENOENT) {
        spdlog::warn("purge {}: {}", ref(name), image.error().message());
        continue;
      }
      // ENOENT: no image, or one killed before librbd wrote its header (a directory entry
      // only, which rbd_remove clears); otherwise ours only if made by the recorded clone.
      bool ours = !image;
      if (image) {
        ours = incomplete_reason(HCN_TRY(records.list(&name)), name, *image).has_value();
        RbdImage closing = std::move(*image);  // closed before removal
      }
      if (ours) {
        if (auto r = remove_incomplete(name, nullptr); r) {
          removed.push_back(name);
        } else if (r.error().code() != ENOENT) {
          spdlog::warn("purge {}: {}", ref(name), r.error().message());
          continue;
        }
      }
      if (auto r = records.forget(name); !r) {
        spdlog::warn("purge {}: {}", ref(name), r.error().message());
      }
    }
    return removed;
  }

  // --- golden ---------------------------------------------------------------------------------

  Status mark_golden(const std::string& name) override {
    auto image = HCN_TRY(open(name, false));
    if (!HCN_TRY(snap_exists(image, std::string(kGoldenSnapshot)))) {
      // Snapshot before the mark: a crash between the two leaves an unmarked image with a
      // snapshot, and marking again finishes the job.
      int r = rbd_snap_create2(image.get(), std::string(kGoldenSnapshot).c_str(),
                               RBD_SNAP_CREATE_SKIP_QUIESCE, &no_progress, nullptr);
      if (r < 0 && r != -EEXIST) {
        return fail(from_negative_errno(r, fmt::format("rbd_snap_create {}@{}", ref(name),
                                                       kGoldenSnapshot)));
      }
    }
    // The value is the image's own id: a copy of it in a clone's metadata does not count.
    const std::string id = HCN_TRY(id_of(image));
    if (int r = rbd_metadata_set(image.get(), std::string(kGoldenMetadataKey).c_str(),
                                 id.c_str());
        r < 0) {
      return fail(from_negative_errno(r, "rbd_metadata_set " + ref(name)));
    }
    return {};
  }

  Status unmark_golden(const std::string& name) override {
    auto image = HCN_TRY(open(name, false));
    int r = rbd_metadata_remove(image.get(), std::string(kGoldenMetadataKey).c_str());
    if (r < 0 && r != -ENOENT) {
      return fail(from_negative_errno(r, "rbd_metadata_remove " + ref(name)));
    }
    const std::string snap(kGoldenSnapshot);
    if (HCN_TRY(snap_exists(image, snap))) {
      auto children = HCN_TRY(children_of(image, snap));
      if (children.empty()) {
        r = rbd_snap_remove2(image.get(), snap.c_str(), RBD_SNAP_REMOVE_UNPROTECT, &no_progress,
                             nullptr);
        if (r < 0 && r != -ENOENT) {
          return fail(from_negative_errno(r, fmt::format("rbd_snap_remove {}@{}", ref(name), snap)));
        }
      } else {
        spdlog::info("unmark golden {}: snapshot {} kept, clones use it: {}", ref(name), snap,
                     join(children));
      }
    }
    return {};
  }

  // --- snapshots ------------------------------------------------------------------------------

  Result<SnapshotInfo> snapshot_create(const std::string& name,
                                       const std::string& snapshot) override {
    auto image = HCN_TRY(open(name, false));
    if (HCN_TRY(snap_exists(image, snapshot))) {
      return fail(EEXIST, fmt::format("snapshot {}@{} already exists", ref(name), snapshot));
    }
    int r = rbd_snap_create2(image.get(), snapshot.c_str(), RBD_SNAP_CREATE_SKIP_QUIESCE,
                             &no_progress, nullptr);
    if (r == -EEXIST) {
      return fail(EEXIST, fmt::format("snapshot {}@{} already exists", ref(name), snapshot));
    }
    if (r < 0) {
      return fail(from_negative_errno(r, fmt::format("rbd_snap_create {}@{}", ref(name), snapshot)));
    }
    for (auto& s : HCN_TRY(snapshots_of(image, name))) {
      if (s.name == snapshot) return s;
    }
    return fail(ENOENT, fmt::format("snapshot {}@{} vanished after creation", ref(name), snapshot));
  }

  Result<std::vector<SnapshotInfo>> snapshot_list(const std::string& name) override {
    auto image = HCN_TRY(open(name, true));
    return snapshots_of(image, name);
  }

  Status snapshot_remove(const std::string& name, const std::string& snapshot) override {
    auto image = HCN_TRY(open(name, false));
    if (!HCN_TRY(snap_exists(image, snapshot))) {
      return fail(ENOENT, fmt::format("snapshot {}@{} does not exist", ref(name), snapshot));
    }
    if (snapshot == kGoldenSnapshot && HCN_TRY(is_golden(image))) {
      return fail(EBUSY, fmt::format("{}@{} is the snapshot clones of golden image {} are made "
                                     "from: unmark golden first",
                                     ref(name), snapshot, ref(name)));
    }
    auto children = HCN_TRY(children_of(image, snapshot));
    if (!children.empty()) {
      return fail(ENOTEMPTY, fmt::format("snapshot {}@{} has clones: {} (flatten or remove them "
                                         "first)",
                                         ref(name), snapshot, join(children)));
    }
    int r = rbd_snap_remove2(image.get(), snapshot.c_str(), RBD_SNAP_REMOVE_UNPROTECT,
                             &no_progress, nullptr);
    if (r < 0) {
      return fail(from_negative_errno(r, fmt::format("rbd_snap_remove {}@{}", ref(name), snapshot)));
    }
    return {};
  }

  Status snapshot_rollback(const std::string& name, const std::string& snapshot,
                           const ProgressFn& progress) override {
    auto image = HCN_TRY(open(name, false));
    if (!HCN_TRY(snap_exists(image, snapshot))) {
      return fail(ENOENT, fmt::format("snapshot {}@{} does not exist", ref(name), snapshot));
    }
    HCN_TRY_STATUS(refuse_if_locked(image, name, "roll back"));
    ProgressBridge bridge{&progress};
    int r = rbd_snap_rollback_with_progress(image.get(), snapshot.c_str(),
                                            &ProgressBridge::callback, &bridge);
    if (bridge.cancelled) {
      return fail(ECANCELED, fmt::format("rollback {} to {}: cancelled (the image is partly "
                                         "rolled back: roll back again)",
                                         ref(name), snapshot));
    }
    if (r < 0) {
      return fail(from_negative_errno(r, fmt::format("rbd_snap_rollback {}@{}", ref(name), snapshot)));
    }
    return {};
  }

 private:
  static std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
    return out;
  }

  // "POOL/NAME" for an RBD image, the configured pool's name when there is one.
  std::string display(const std::string& rados_pool, const std::string& ns,
                      const std::string& image) const {
    if (auto pool = directory_.rbd_pool_name(rados_pool, ns)) {
      return *pool + "/" + image;
    }
    return "rbd:" + rados_pool + (ns.empty() ? "" : "/" + ns) + "/" + image;
  }

  Result<std::optional<std::string>> parent_of(const RbdImage& image) {
    rbd_linked_image_spec_t spec{};
    rbd_snap_spec_t snap{};
    int r = rbd_get_parent(image.get(), &spec, &snap);
    if (r == -ENOENT) return std::optional<std::string>();
    if (r < 0) return fail(from_negative_errno(r, "rbd_get_parent " + image.name()));
    std::string text = display(spec.pool_name, spec.pool_namespace, spec.image_name) + "@" +
                       (snap.name != nullptr ? snap.name : "?");
    rbd_linked_image_spec_cleanup(&spec);
    rbd_snap_spec_cleanup(&snap);
    return std::optional<std::string>(std::move(text));
  }

  // The golden mark is metadata hcnode.golden = the image's own id (rbd_get_id). librbd copies
  // a parent's metadata into its clones, so a clone of a golden image carries the parent's mark
  // with the parent's id: that copy is not a mark (kCopied), and is removed where the image is
  // open for writing anyway (drop_copied_mark).
  enum class Mark { kNone, kOwn, kCopied };

  static Result<std::string> id_of(const RbdImage& image) {
    char id[128];
    if (int r = rbd_get_id(image.get(), id, sizeof(id)); r < 0) {
      return fail(from_negative_errno(r, "rbd_get_id " + image.name()));
    }
    return std::string(id);
  }

  Result<Mark> golden_mark(const RbdImage& image) {
    char value[128];
    size_t len = sizeof(value);
    int r = rbd_metadata_get(image.get(), std::string(kGoldenMetadataKey).c_str(), value, &len);
    if (r == -ENOENT) return Mark::kNone;
    if (r == -ERANGE) return Mark::kCopied;  // longer than any image id: not ours
    if (r < 0) return fail(from_negative_errno(r, "rbd_metadata_get " + image.name()));
    const std::string id = HCN_TRY(id_of(image));
    return std::string_view(value, strnlen(value, std::min(len, sizeof(value)))) == id
               ? Mark::kOwn
               : Mark::kCopied;
  }

  Result<bool> is_golden(const RbdImage& image) {
    return HCN_TRY(golden_mark(image)) == Mark::kOwn;
  }

  // Removes a mark copied from the parent (image open read-write). Best effort: the copy is
  // ignored anyway.
  void drop_copied_mark(const RbdImage& image) {
    auto mark = golden_mark(image);
    if (mark && *mark == Mark::kCopied) {
      int r = rbd_metadata_remove(image.get(), std::string(kGoldenMetadataKey).c_str());
      if (r < 0 && r != -ENOENT) {
        spdlog::warn("{}: could not remove the golden mark copied from its parent: error {}",
                     image.name(), r);
      }
    }
  }

  Result<bool> snap_exists(const RbdImage& image, const std::string& snap) {
    bool exists = false;
    if (int r = rbd_snap_exists(image.get(), snap.c_str(), &exists); r < 0) {
      return fail(from_negative_errno(r, "rbd_snap_exists " + image.name()));
    }
    return exists;
  }

  // Clones of image@snap (any pool), "POOL/NAME"; " (in trash)" for children in the RBD trash.
  Result<std::vector<std::string>> children_of(const RbdImage& image, const std::string& snap) {
    if (int r = rbd_snap_set(image.get(), snap.c_str()); r < 0) {
      return fail(from_negative_errno(r, fmt::format("rbd_snap_set {}@{}", image.name(), snap)));
    }
    std::vector<std::string> out;
    size_t max = 16;
    int r = 0;
    for (;;) {
      std::vector<rbd_linked_image_spec_t> specs(max);
      r = rbd_list_children3(image.get(), specs.data(), &max);
      if (r == -ERANGE) continue;
      if (r >= 0) {
        for (size_t i = 0; i < max; ++i) {
          std::string c = display(specs[i].pool_name, specs[i].pool_namespace,
                                  specs[i].image_name);
          if (specs[i].trash) c += " (in trash)";
          out.push_back(std::move(c));
        }
        rbd_linked_image_spec_list_cleanup(specs.data(), max);
      }
      break;
    }
    rbd_snap_set(image.get(), nullptr);  // back to the head for the caller
    if (r < 0) {
      return fail(from_negative_errno(r, fmt::format("rbd_list_children3 {}@{}", image.name(), snap)));
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  Result<std::vector<SnapshotInfo>> snapshots_of(const RbdImage& image, const std::string& name) {
    int max = 16;
    std::vector<rbd_snap_info_t> snaps;
    int n = 0;
    for (;;) {
      snaps.assign(static_cast<size_t>(max), rbd_snap_info_t{});
      n = rbd_snap_list(image.get(), snaps.data(), &max);
      if (n == -ERANGE) continue;
      if (n < 0) return fail(from_negative_errno(n, "rbd_snap_list " + ref(name)));
      break;
    }
    std::vector<SnapshotInfo> out;
    for (int i = 0; i < n; ++i) {
      SnapshotInfo s;
      s.name = snaps[static_cast<size_t>(i)].name;
      s.id = snaps[static_cast<size_t>(i)].id;
      s.size = snaps[static_cast<size_t>(i)].size;
      timespec ts{};
      if (rbd_snap_get_timestamp(image.get(), s.id, &ts) == 0) s.created = ts.tv_sec;
      out.push_back(std::move(s));
    }
    rbd_snap_list_end(snaps.data());
    for (auto& s : out) {
      s.children = HCN_TRY(children_of(image, s.name));
    }
    return out;
  }

  // Bytes in objects that exist in THIS image (the parent's are not counted): fast with
  // fast-diff (object map), whole objects.
  Result<uint64_t> used_bytes(const RbdImage& image, uint64_t size) {
    uint64_t used = 0;
    auto cb = [](uint64_t, size_t len, int exists, void* arg) -> int {
      if (exists) *static_cast<uint64_t*>(arg) += len;
      return 0;
    };
    int r = rbd_diff_iterate2(image.get(), nullptr, 0, size, /*include_parent=*/0,
                              /*whole_object=*/1, cb, &used);
    if (r < 0) return fail(from_negative_errno(r, "rbd_diff_iterate2 " + image.name()));
    return used;
  }

  // A VM holds its disk's exclusive lock while it runs; operations that would change the data
  // under it are refused rather than taking the lock away (librbd would ask the owner to hand
  // it over).
  Status refuse_if_locked(const RbdImage& image, const std::string& name, const char* what) {
    rbd_lock_mode_t mode{};
    size_t max = 4;
    std::vector<char*> owners(max, nullptr);
    int r = rbd_lock_get_owners(image.get(), &mode, owners.data(), &max);
    if (r == -ENOENT || (r >= 0 && max == 0)) return {};
    if (r == -ERANGE) {
      return fail(EBUSY, fmt::format("cannot {} {}: it is in use (locked by several clients)",
                                     what, ref(name)));
    }
    if (r < 0) return fail(from_negative_errno(r, "rbd_lock_get_owners " + ref(name)));
    std::string who = owners[0] != nullptr ? owners[0] : "?";
    rbd_lock_get_owners_cleanup(owners.data(), max);
    return fail(EBUSY, fmt::format("cannot {} {}: it is in use (exclusive lock held by {}); stop "
                                   "the VM first",
                                   what, ref(name), who));
  }

  PoolConfig config_;
  RbdPool loc_;
  std::shared_ptr<blockdev::StorageSessions> sessions_;
  const PoolDirectory& directory_;
  std::mutex mu_;
  std::shared_ptr<RadosCluster> cluster_;  // guarded by mu_; outlives io_
  std::optional<RadosIoCtx> io_;           // guarded by mu_

  friend class RbdPending;
};

RbdPending::~RbdPending() {
  if (!committed_) {
    if (auto r = driver_.remove_plain(temp_, nullptr); !r) {
      spdlog::warn("could not remove temporary image {}: {} (nothing uses it: hcctl image rm {})",
                   driver_.ref(temp_), r.error().message(), driver_.ref(temp_));
    }
  }
}

Status RbdPending::resize(uint64_t new_size) {
  auto image = HCN_TRY(driver_.open(temp_, false));
  int r = rbd_resize2(image.get(), new_size, /*allow_shrink=*/true, &no_progress, nullptr);
  if (r < 0) return fail(from_negative_errno(r, "rbd_resize2 " + driver_.ref(temp_)));
  size_ = new_size;
  return {};
}

Status RbdPending::commit() {
  HCN_TRY_STATUS(driver_.rename(temp_, final_));
  committed_ = true;
  return {};
}

}  // namespace

std::unique_ptr<PoolDriver> make_rbd_pool(const PoolConfig& config,
                                          std::shared_ptr<blockdev::StorageSessions> sessions,
                                          const PoolDirectory& directory) {
  return std::make_unique<RbdDriver>(config, std::move(sessions), directory);
}

}  // namespace hcnode::storage
