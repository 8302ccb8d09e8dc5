// Opening disks: a DiskUri plus options becomes a Backend, reusing the process's connections.
//
// StorageSessions holds what a VMM process connects to ONCE and shares between its disks:
//   - one RadosCluster (one librados client: its address is what fencing blocklists, so the VMM
//     reports it in `describe`), connected on the first rbd: disk;
//   - one GlfsVolume per (host, port, volume) (glfs_init/glfs_fini cost seconds: never per disk).
// Sessions live as long as the process (or the test); backends keep a shared_ptr to theirs.
//
// Thread-safety: StorageSessions is thread-safe (disks may be hot-plugged from the control
// thread while workers run).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "base/result.hpp"
#include "blockdev/backend.hpp"
#include "blockdev/disk_uri.hpp"
#include "blockdev/gluster/glfs_handles.hpp"
#include "blockdev/rbd/ceph_client_config.hpp"
#include "blockdev/rbd/rados_handles.hpp"

namespace hcnode::blockdev {

// Host page cache / librbd cache policy of a disk.
//   kNone       file: O_DIRECT; gluster: O_DIRECT on the brick side; rbd: librbd cache off.
//   kWriteback  file: page cache; gluster: default; rbd: librbd cache on, writethrough until the
//               guest's first flush (librbd's rbd_cache_writethrough_until_flush) — the default,
//               and safe: a guest that never flushes never has acknowledged data only in cache.
enum class CachePolicy { kNone, kWriteback };
const char* to_string(CachePolicy policy);
Result<CachePolicy> parse_cache_policy(const std::string& text);

// What the bytes of a disk hold: the guest's disk itself (raw) or a qcow2 image (blockdev/qcow2)
// whose backing chain open_backend opens too.
enum class ImageFormat { kRaw, kQcow2 };
const char* to_string(ImageFormat format);
Result<ImageFormat> parse_image_format(const std::string& text);

struct BackendOptions {
  bool read_only = false;
  CachePolicy cache = CachePolicy::kWriteback;
  ImageFormat format = ImageFormat::kRaw;
  // Internal to format layers: writes past the end extend the file (file, gluster; rbd refuses
  // with ENOSPC) and info().size is the size at open. The qcow2 layer opens its file this way.
  bool growable = false;
  // Internal to format layers: the file is an image container (qcow2), not a guest's disk. Its
  // size may be any number of bytes — the qcow2 spec lets the file end right after its last
  // cluster or table, and `qemu-img create` writes only the bytes of the L1 table (a fresh
  // overlay is 196616 bytes) — and reads past its end return zeroes, as QEMU's block layer
  // reads image files. A raw disk keeps refusing a size that is not a multiple of 512 (the
  // guest sees whole sectors). Honoured by file and gluster; rbd still refuses such sizes.
  bool container = false;
};

struct SessionsConfig {
  std::optional<CephClientConfig> ceph;  // nullopt: from the environment on first use
  std::string gluster_log_file = "/dev/null";
  int gluster_log_level = 3;
  // librbd cache for every rbd disk of this process (a client-wide librados setting).
  CachePolicy rbd_cache = CachePolicy::kWriteback;
  // More librados options for this process's client (e.g. client_mount_timeout for tools).
  std::vector<std::pair<std::string, std::string>> rados_overrides;
};

class StorageSessions {
 public:
  explicit StorageSessions(SessionsConfig config = {}) : config_(std::move(config)) {}
  StorageSessions(const StorageSessions&) = delete;
  StorageSessions& operator=(const StorageSessions&) = delete;

  // Connects on first use; later calls return the same cluster.
  Result<std::shared_ptr<RadosCluster>> rados();
  // The rados client address if connected (for `describe`), else nullopt.
  std::optional<std::string> rados_client_address() const;

  Result<std::shared_ptr<GlfsVolume>> gluster(const GlusterLocation& where);

  // The process is exiting: Gluster connections are dropped without glfs_fini
  // (GlfsVolume::skip_fini_at_exit). Call after every disk was drained.
  void prepare_process_exit();

 private:
  SessionsConfig config_;
  mutable std::mutex mu_;
  std::shared_ptr<RadosCluster> rados_;  // guarded by mu_
  std::optional<std::string> rados_address_;  // guarded by mu_
  std::map<std::tuple<std::string, uint16_t, std::string>, std::shared_ptr<GlfsVolume>>
      gluster_;  // guarded by mu_
};

// Opens the disk named by uri. Fails with a message naming the disk: ENOENT (no such image or
// file), EACCES, EROFS (read-write open of a snapshot), EINVAL (a raw disk whose size is not a
// multiple of 512).
Result<std::shared_ptr<Backend>> open_backend(const DiskUri& uri, const BackendOptions& options,
                                              StorageSessions& sessions);

}  // namespace hcnode::blockdev
