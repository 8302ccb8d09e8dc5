// The seam between ImageService (validation, cross-pool steps, data copies) and one kind of
// pool (rbd/rbd_pool.cpp; file/file_pool.cpp for gluster and dir). Internal to storage/.
//
// Drivers get names that already passed validate_name and pools that exist; they report
// "image POOL/NAME …" errors themselves. Every driver call is blocking and thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "blockdev/disk_uri.hpp"
#include "storage/image_info.hpp"
#include "storage/image_service.hpp"
#include "storage/pool_config.hpp"

namespace hcnode::storage {

// A new raw image being written under a temporary name. Until commit() it is invisible to
// list()/info() under its final name; destroying it uncommitted removes the temporary.
class PendingImage {
 public:
  virtual ~PendingImage() = default;

  // The temporary image, raw, to open with open_backend while writing. Every Backend opened on
  // it must be closed before resize() and commit().
  virtual const blockdev::DiskUri& uri() const = 0;
  virtual uint64_t size() const = 0;
  virtual Status resize(uint64_t new_size) = 0;
  // Makes the image visible under its final name (EEXIST if the name was taken meanwhile; the
  // temporary is then removed by the destructor).
  virtual Status commit() = 0;
};

class PoolDriver {
 public:
  virtual ~PoolDriver() = default;

  virtual const PoolConfig& config() const = 0;
  virtual Result<PoolSpace> space() = 0;

  virtual Result<ImageService::Location> locate(const std::string& name,
                                                const std::optional<std::string>& snapshot) = 0;
  // ENOENT-free existence check (false when absent).
  virtual Result<bool> exists(const std::string& name) = 0;
  virtual Result<std::vector<ImageSummary>> list(const ListOptions& options) = 0;
  virtual Result<ImageInfo> info(const std::string& name) = 0;
  virtual Result<std::vector<DuEntry>> du(const std::optional<std::string>& name) = 0;

  // A new, empty raw image of `size` bytes under a temporary name (the final name was checked
  // free by the caller; commit() checks again).
  virtual Result<std::unique_ptr<PendingImage>> begin_image(const std::string& name,
                                                            uint64_t size) = 0;

  // source is in this pool; the clone goes to `dest` (a driver of the same kind; file drivers
  // require dest == this). EEXIST when clone_name is taken (checked by the driver). Returns
  // what is known without reading the new clone back (see ImageService::clone): pool, name,
  // pool_kind, uri, format, size, parent (RBD also features, qcow2 also backing_chain).
  virtual Result<ImageInfo> clone(const std::string& source,
                                  const std::optional<std::string>& snapshot, PoolDriver& dest,
                                  const std::string& clone_name) = 0;
  virtual Status flatten(const std::string& name, const ProgressFn& progress) = 0;
  virtual Status resize(const std::string& name, uint64_t new_size,
                        const ResizeOptions& options) = 0;
  // Children were dealt with by the caller; the driver removes what the image owns.
  virtual Status remove(const std::string& name, const ProgressFn& progress) = 0;
  virtual Result<std::vector<std::string>> purge_incomplete(std::chrono::seconds min_age) = 0;

  virtual Status mark_golden(const std::string& name) = 0;
  virtual Status unmark_golden(const std::string& name) = 0;

  virtual Result<SnapshotInfo> snapshot_create(const std::string& name,
                                               const std::string& snapshot) = 0;
  virtual Result<std::vector<SnapshotInfo>> snapshot_list(const std::string& name) = 0;
  virtual Status snapshot_remove(const std::string& name, const std::string& snapshot) = 0;
  virtual Status snapshot_rollback(const std::string& name, const std::string& snapshot,
                                   const ProgressFn& progress) = 0;
};

// Maps backend locations back to "POOL/NAME" of a configured pool (parents, children, backing
// files that live in another pool). Implemented by ImageService.
class PoolDirectory {
 public:
  virtual ~PoolDirectory() = default;
  // The configured pool whose RBD pool/namespace this is, or nullopt.
  virtual std::optional<std::string> rbd_pool_name(const std::string& rados_pool,
                                                   const std::string& ns) const = 0;
};

std::unique_ptr<PoolDriver> make_rbd_pool(const PoolConfig& config,
                                          std::shared_ptr<blockdev::StorageSessions> sessions,
                                          const PoolDirectory& directory);
std::unique_ptr<PoolDriver> make_file_pool(const PoolConfig& config,
                                           std::shared_ptr<blockdev::StorageSessions> sessions);

// keep_qcow2 imports into a file pool: the qcow2 file's bytes as they are, published atomically as
// NAME.qcow2. EINVAL for other pool kinds.
Status import_qcow2_verbatim(PoolDriver& pool, const std::string& name, int fd, uint64_t size,
                             const ProgressFn& progress);

// A short random suffix for temporary names ("k3x9q2").
std::string random_suffix();

}  // namespace hcnode::storage
