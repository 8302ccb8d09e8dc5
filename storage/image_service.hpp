// ImageService: the control plane of disks — golden images, clones, snapshots, import/export.
//
// Images are named POOL/NAME (storage/image_ref.hpp); pools come from StorageConfig
// (storage/pool_config.hpp). What an image is, per pool kind:
//
//   rbd      an RBD image. Golden = image metadata `hcnode.golden` whose value is the image's own
//            id (rbd_get_id) + a snapshot named `golden`. librbd copies a parent's metadata into
//            its clones; a mark whose value is another image's id is such a copy and does not
//            count (it is removed when the clone is next resized or flattened).
//            Clone = RBD clone v2 of a snapshot (no protection needed). Features of every image
//            the service creates: layering, exclusive-lock, object-map, fast-diff, deep-flatten.
//   gluster  DIR/NAME.raw or DIR/NAME.qcow2 on the volume (gfapi only, no FUSE).
//   dir      PATH/NAME.raw or PATH/NAME.qcow2 locally.
//            Golden = the file is read-only (mode 0444) and carries the xattr
//            `user.hcnode.golden` (on file systems without user xattrs: a sidecar `.NAME.golden`).
//            Clone = a new qcow2 v3 overlay NAME.qcow2 whose backing file is the golden image's
//            file name RELATIVE to the pool directory, backing format raw|qcow2 — plain qcow2,
//            so `qemu-img info/check/compare` read it. Never glfs_copy_file_range.
//   A NAME exists in a file pool at most once, whatever the extension.
//
// Atomicity (what an interrupted operation — Ctrl-C, a killed process, a lost connection —
// leaves behind): the old state or the new one, never a half image visible as valid.
//   - New images that are filled with data (create, import; on file pools also clone and
//     flatten) are built under a temporary name and renamed at the end: RBD
//     `NAME.importing-<random>` (rbd_rename), files `.NAME.<ext>.tmp-<random>` (rename(2) /
//     glfs_rename). list() hides them; purge_incomplete() removes leftovers. On failure the
//     service removes its temporary itself.
//   - qcow2 flatten writes a complete raw copy under a temporary name, fsyncs it, then renames it
//     over the image name and removes the overlay.
//   - RBD operations that librbd makes crash-safe (flatten, resize, rollback, remove) are used
//     as they are.
//   - RBD clone is one rbd_clone3 under the final name (a temporary name + rbd_rename cost more
//     than the clone itself). librbd removes the child again when a step of the clone FAILS
//     (rados error, lost connection: nothing is left). A process KILLED inside rbd_clone3 can
//     leave a half-made child under the final name (at first an empty image without a parent),
//     so every clone is bracketed by a record in the pool's `hcnode.clones` object, written
//     before rbd_clone3 and cleared after it (storage/rbd/clone_intents.hpp): an image with a
//     record is incomplete — list() hides it, info() says why, locate() refuses it (EUCLEAN),
//     remove() and purge_incomplete() clear it.
//
// Progress and cancellation: long operations take a ProgressFn, called with (bytes done, bytes
// total) after each chunk, from the calling thread — except librbd operations (RBD flatten,
// resize, rollback, remove), whose progress librbd reports from its own threads, one call at a
// time: keep the callback thread-safe (e.g. an atomic flag for Ctrl-C, a line to stderr).
// Returning false cancels: the operation stops at the next chunk boundary, removes its
// temporaries and fails with ECANCELED (old state kept). librbd flatten/resize/rollback/remove
// stop where librbd can stop them (flatten: objects copied so far stay copied; the image is
// still a valid clone).
//
// Errors (Result / Status; Error::code() is an errno, message() is one line for the operator):
//   EINVAL   bad name, bad size (not a multiple of 512), snapshot where none is allowed, …
//   ENOENT   no such image / snapshot ("image rbd/x does not exist")
//   EEXIST   the target name is taken
//   ENOSPC   size above the pool's free space
//   ENOTEMPTY  remove refused while clones depend on the image (the message lists them)
//   EBUSY    the image is in use (RBD exclusive lock held by a running VM), or golden and
//            the operation would change it
//   EOPNOTSUPP  the pool kind / format cannot do it (message says what to do instead)
//   ECANCELED   the ProgressFn returned false
//   ENODEV   unknown pool (the message lists the configured pools)
//   EUCLEAN  locate() of an incomplete image (an interrupted clone; the message says which)
//
// Thread-safety: one ImageService may be used from several threads; each call opens its own
// librbd/gfapi handles over the shared StorageSessions (one rados client, one glfs_t per
// volume). Calls are blocking (seconds to minutes for copies): the agent runs them off its event
// loop. Two processes operating on the same image at once are not coordinated beyond what
// RBD/Gluster guarantee (create/rename are atomic, so two imports of one name cannot both win).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "blockdev/disk_uri.hpp"
#include "blockdev/open_backend.hpp"
#include "storage/image_info.hpp"
#include "storage/image_ref.hpp"
#include "storage/pool_config.hpp"

namespace hcnode::storage {

// (bytes done, bytes total) -> keep going? See "Progress and cancellation" above.
using ProgressFn = std::function<bool(uint64_t done, uint64_t total)>;

// The snapshot `mark_golden` creates on RBD and `clone` uses when none is named.
inline constexpr std::string_view kGoldenSnapshot = "golden";
// RBD image metadata key / file xattr that mark a golden image.
inline constexpr std::string_view kGoldenMetadataKey = "hcnode.golden";
inline constexpr std::string_view kGoldenXattr = "user.hcnode.golden";

struct ListOptions {
  // Also list images that are in progress or were left behind by an interrupted operation
  // (RBD `NAME.importing-*`, files `.NAME.*.tmp-*`), under their temporary names.
  bool include_incomplete = false;
};

struct CreateOptions {
  uint64_t size = 0;  // bytes, multiple of 512, at most the pool's free space
};

struct ImportOptions {
  // Source format: nullopt = detect (qcow2 magic "QFI\xfb" at offset 0, else raw). Streams
  // (import_stream) are raw only: EINVAL if kQcow2 is given.
  std::optional<ImageFormat> source_format;
  // File pools only: store a qcow2 source as qcow2 (copied byte for byte, zero chunks skipped)
  // instead of converting it to raw. Refused (EINVAL) for qcow2 sources with a backing file.
  // RBD pools always store raw.
  bool keep_qcow2 = false;
  // import_stream only: the number of bytes the stream will deliver, if known. Used for the
  // free-space check and to size the image up front; without it the image grows as data
  // arrives. A stream that ends early or runs long fails (EIO) and leaves nothing behind.
  std::optional<uint64_t> stream_size;
  ProgressFn progress;  // total = source virtual size (0 for a stream of unknown size)
};

struct ExportOptions {
  // The destination path must not exist (EEXIST), unless overwrite.
  bool overwrite = false;
  // Regular-file destinations: leave holes for all-zero chunks (the file is sparse).
  bool sparse = true;
  ProgressFn progress;
};

struct ResizeOptions {
  bool allow_shrink = false;  // without it a smaller size is refused (EINVAL)
  ProgressFn progress;
};

struct RemoveOptions {
  // Flatten every clone that depends on the image (and on its snapshots) first, then remove.
  // Without it, remove fails with ENOTEMPTY listing the clones.
  bool flatten_children = false;
  ProgressFn progress;  // flatten progress of the children, then removal
};

class ImageService {
 public:
  // No connection is made here: pools connect on first use (a dead Gluster volume does not stop
  // operations on RBD pools). `sessions` may be shared with VMM-side code in the same process
  // (tests); nullptr = a private one built from config.ceph.
  static Result<std::unique_ptr<ImageService>> create(
      StorageConfig config, std::shared_ptr<blockdev::StorageSessions> sessions = nullptr);

  ~ImageService();
  ImageService(const ImageService&) = delete;
  ImageService& operator=(const ImageService&) = delete;

  const StorageConfig& config() const;
  // The sessions behind every pool: open_backend(uri_of(…), …, sessions()) opens an image's data.
  blockdev::StorageSessions& sessions();

  // ---- pools and names ---------------------------------------------------------------------

  // Every configured pool with its capacity; unreachable pools are listed with the reason.
  std::vector<PoolSummary> pools();

  // The disk URI and format of an existing image (what a VMM opens: BackendOptions::format =
  // the returned format). A snapshot in `image` gives a read-only RBD snapshot URI (RBD only).
  // Incomplete images (an interrupted clone) are refused with EUCLEAN.
  struct Location {
    blockdev::DiskUri uri;
    ImageFormat format = ImageFormat::kRaw;
  };
  Result<Location> locate(const ImageRef& image);

  // ---- queries -----------------------------------------------------------------------------

  // Images of one pool, sorted by name.
  Result<std::vector<ImageSummary>> list(std::string_view pool, const ListOptions& options = {});
  Result<ImageInfo> info(const ImageRef& image);
  // Provisioned vs used, for one image (name given) or every image of the pool, plus pool space.
  Result<DuReport> du(std::string_view pool, std::optional<std::string> name = std::nullopt);

  // ---- creating images ---------------------------------------------------------------------

  // An empty raw image (reads as zeroes). RBD: the standard feature set. Files: NAME.raw,
  // sparse.
  Result<ImageInfo> create_image(const ImageRef& image, const CreateOptions& options);

  // Imports a local file (raw or qcow2, read through blockdev's qcow2 layer: backing chains of
  // the source are followed) as a new image. Sparse-aware: all-zero chunks are not written.
  // The source size must be a multiple of 512 (raw) — EINVAL otherwise.
  Result<ImageInfo> import_file(const std::string& source_path, const ImageRef& image,
                                const ImportOptions& options);
  // Imports raw bytes read from `fd` (stdin, a pipe) until EOF. The fd is not closed. The total
  // must be a multiple of 512.
  Result<ImageInfo> import_stream(int fd, const ImageRef& image, const ImportOptions& options);

  // Writes the image's virtual disk (raw; qcow2 overlays read through their chain) to a new
  // local file, or to `fd` (stdout, a pipe: every byte is written, zeroes too).
  Status export_file(const ImageRef& image, const std::string& dest_path,
                     const ExportOptions& options);
  Status export_stream(const ImageRef& image, int fd, const ExportOptions& options);

  // A copy-on-write clone named `clone` of `source`:
  //   RBD: clone v2 of source@snapshot, or of source@golden when no snapshot is named (EINVAL
  //        "not golden: mark it golden or name a snapshot" if that does not exist). The clone may
  //        go to another RBD pool.
  //   files: the source must be golden (EINVAL otherwise: writing a backing file would corrupt
  //        its clones) and `clone` must be in the same pool (EINVAL otherwise); snapshots are
  //        refused (EOPNOTSUPP). The clone is NAME.qcow2, virtual size = the source's size.
  // EEXIST if `clone` is taken. The result is what is known without reading the clone back
  // (fast, independent of the pool's size): pool, name, pool_kind, uri, format, size, parent;
  // RBD also features, qcow2 also backing_chain and used. A new clone has no children, no
  // snapshots and is not golden; `used` is 0 on RBD. info() gives the full picture.
  Result<ImageInfo> clone(const ImageRef& source, const ImageRef& clone);

  // Copies the parent's data into the image and drops the parent link. No-op for an image
  // without a parent.
  //   RBD: rbd_flatten (safe while a VM uses the clone: librbd coordinates with the lock owner).
  //   files: NAME.qcow2 becomes NAME.raw (every virtual byte read through the qcow2 chain into a
  //        hidden raw file, fsynced, renamed into place, then the overlay is unlinked; a golden
  //        mark is carried over). Refused (EBUSY) while clones name NAME.qcow2 as their backing
  //        file. No VM may use the image meanwhile (nothing on a file pool can detect one):
  //        its writes after the copy would be lost.
  Status flatten(const ImageRef& image, const ProgressFn& progress = {});

  // Grow (any image: RBD, raw files); shrink only with allow_shrink. Refused (EBUSY) for golden
  // images, and (EOPNOTSUPP, "flatten it first") for qcow2 files. ENOSPC when growing beyond
  // the pool's free space.
  Status resize(const ImageRef& image, uint64_t new_size, const ResizeOptions& options);

  // Removes the image, its snapshots (RBD: only snapshots without clones; the golden snapshot
  // included) and its golden marks. ENOTEMPTY while clones depend on it (unless
  // flatten_children). EBUSY if a VM holds it open (RBD: exclusive lock or watchers; file pools
  // cannot tell — remove a file image only when no VM uses it).
  Status remove(const ImageRef& image, const RemoveOptions& options = {});

  // Removes leftovers of interrupted operations (see ListOptions::include_incomplete) older than
  // min_age (a younger one may still be in progress in another process). Returns their names.
  Result<std::vector<std::string>> purge_incomplete(std::string_view pool,
                                                    std::chrono::seconds min_age);

  // ---- golden images -----------------------------------------------------------------------

  // RBD: sets metadata hcnode.golden = the image's id and creates snapshot `golden` if absent (the snapshot taken
  // now is what clones will see; later writes to the image do not reach existing or new clones
  // — mark_golden on an already golden image keeps its snapshot).
  // Files: chmod 0444 + xattr (or sidecar). Idempotent.
  Status mark_golden(const ImageRef& image);
  // Removes the mark (files: mode back to 0644). RBD: the `golden` snapshot is kept while clones
  // use it, removed otherwise. Existing clones keep working either way (files: their backing file
  // is now writable — writing it corrupts them; the CLI should warn).
  Status unmark_golden(const ImageRef& image);

  // ---- snapshots (RBD only; on file pools create/remove/rollback fail with EOPNOTSUPP
  //      "snapshots of qcow2 images are not supported yet; clone the golden image instead", and
  //      snapshot_list returns an empty list) ---------------------------------------------------

  Result<SnapshotInfo> snapshot_create(const ImageRef& image, std::string_view snapshot);
  Result<std::vector<SnapshotInfo>> snapshot_list(const ImageRef& image);
  // Refused (ENOTEMPTY, listing them) while clones of the snapshot exist; refused (EBUSY) for the
  // `golden` snapshot of a golden image (unmark first).
  Status snapshot_remove(const ImageRef& image, std::string_view snapshot);
  // The image must not be in use by a VM (EBUSY).
  Status snapshot_rollback(const ImageRef& image, std::string_view snapshot,
                           const ProgressFn& progress = {});

  class Impl;

 private:
  explicit ImageService(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hcnode::storage
