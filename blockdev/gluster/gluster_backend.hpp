// GlusterBackend: a disk that is a file on a Gluster volume, driven by gfapi's async calls
// (glusterfs 10.x).
//
//   gluster://HOST[:PORT]/VOLUME/PATH
//
// Each request carries a small heap context into gfapi; the callback (on gfapi's event
// threads) maps the result, frees the context and pushes {cookie, result} onto the queue's
// CompletionList. gfapi's async calls do not wait for the bricks, so submit() never blocks.
//
// The GlfsVolume is shared per (host, port, volume) through StorageSessions (glfs_fini costs
// ~10 s here). CachePolicy::kNone opens the file with O_DIRECT (the volume's group virt sets
// performance.strict-o-direct, so the flag reaches the bricks and write-behind steps aside).
// The bricks then need offset and length aligned to 512; gfapi copies data through its own
// page-aligned buffers in both directions, so the guest's memory alignment does not matter.
// Requests that are not aligned go to a second, buffered descriptor, as in the file backend.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "base/result.hpp"
#include "blockdev/backend.hpp"
#include "blockdev/disk_uri.hpp"
#include "blockdev/gluster/glfs_handles.hpp"

namespace hcnode::blockdev {

struct BackendOptions;

class GlusterBackend final : public Backend,
                             public std::enable_shared_from_this<GlusterBackend> {
 public:
  static Result<std::shared_ptr<GlusterBackend>> open(std::shared_ptr<GlfsVolume> volume,
                                                      const GlusterLocation& where,
                                                      const BackendOptions& options);

  const BackendInfo& info() const override { return info_; }
  Result<std::unique_ptr<BackendQueue>> open_queue(size_t depth) override;
  std::string uri() const override { return uri_; }

  bool uses_direct_io() const { return direct_.has_value(); }
  const GfapiApi& api() const { return volume_->api(); }
  glfs_fd_t* buffered_fd() const { return buffered_->get(); }
  glfs_fd_t* direct_fd() const { return direct_ ? direct_->get() : nullptr; }

 private:
  GlusterBackend(std::shared_ptr<GlfsVolume> volume, std::string uri)
      : volume_(std::move(volume)), uri_(std::move(uri)) {}

  std::shared_ptr<GlfsVolume> volume_;  // destroyed after the files
  std::optional<GlfsFile> buffered_;    // always set once open() succeeded
  std::optional<GlfsFile> direct_;
  BackendInfo info_;
  std::string uri_;
};

}  // namespace hcnode::blockdev
