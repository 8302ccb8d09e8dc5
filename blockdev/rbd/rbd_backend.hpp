// RbdBackend: a disk that is an RBD image, driven by librbd's C aio API (Ceph 16 Pacific).
//
//   rbd:POOL[/NAMESPACE]/IMAGE[@SNAP]
//
// Each request gets an rbd_completion_t whose callback (librbd's finisher thread) only maps
// the return value, releases the completion and pushes {cookie, result} onto the queue's
// CompletionList; the queue's worker reaps from there.
//
// Ownership: the backend holds the process's RadosCluster (shared with other disks), its own
// IoCtx and image, declared in that order so that they are destroyed image -> ioctx -> cluster.
// Queues hold the backend (shared_ptr) and drain in their destructor, so no callback can run
// after the image is closed.
//
// submit() does not wait for the cluster, but librbd's aio calls can block briefly inside the
// call when a throttle is full (objecter in-flight limits, rbd_qos_*); that is accepted.
#pragma once

#include <memory>
#include <string>

#include "base/result.hpp"
#include "blockdev/backend.hpp"
#include "blockdev/disk_uri.hpp"
#include "blockdev/rbd/rados_handles.hpp"

namespace hcnode::blockdev {

struct BackendOptions;

class RbdBackend final : public Backend, public std::enable_shared_from_this<RbdBackend> {
 public:
  // A snapshot opens only with options.read_only (EROFS otherwise).
  static Result<std::shared_ptr<RbdBackend>> open(std::shared_ptr<RadosCluster> cluster,
                                                  const RbdLocation& where,
                                                  const BackendOptions& options);

  const BackendInfo& info() const override { return info_; }
  Result<std::unique_ptr<BackendQueue>> open_queue(size_t depth) override;
  std::string uri() const override { return uri_; }

  rbd_image_t image() const { return image_.get(); }
  const CephApi& api() const { return image_.api(); }

 private:
  RbdBackend(std::shared_ptr<RadosCluster> cluster, RadosIoCtx io, RbdImage image,
             std::string uri)
      : cluster_(std::move(cluster)), io_(std::move(io)), image_(std::move(image)),
        uri_(std::move(uri)) {}

  std::shared_ptr<RadosCluster> cluster_;  // destroyed last
  RadosIoCtx io_;
  RbdImage image_;
  BackendInfo info_;
  std::string uri_;
};

}  // namespace hcnode::blockdev
