// RAII owners of librados and librbd C objects.
//
//   RadosCluster  rados_t          rados_create2 + rados_connect ... rados_shutdown
//   RadosIoCtx    rados_ioctx_t    rados_ioctx_create ... rados_ioctx_destroy
//   RbdImage      rbd_image_t      rbd_open / rbd_open_read_only ... rbd_close
//
// One RadosCluster per process (its client address is what fencing blocklists, so the VMM
// reports it). librados objects are thread-safe; an RbdImage may be used from several threads
// for aio calls. Every IoCtx and image must be destroyed before the RadosCluster it came from:
// declare them after it, or keep it in a shared owner.
//
// librados/librbd are not linked: RadosCluster::connect loads them (ceph_api.hpp) and every
// object carries the table it was made with.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/result.hpp"
#include "blockdev/rbd/ceph_api.hpp"
#include "blockdev/rbd/ceph_client_config.hpp"

namespace hcnode::blockdev {

class RadosCluster {
 public:
  // Loads librados/librbd if this process has not yet (ELIBACC/ELIBBAD: ceph_api()), creates
  // the client, reads the configuration and connects (cephx, monitor session).
  // `overrides` are rados_conf_set after ceph.conf is read and before connecting: client-wide
  // settings such as the librbd cache ({"rbd_cache", "false"}).
  static Result<RadosCluster> connect(
      const CephClientConfig& config,
      const std::vector<std::pair<std::string, std::string>>& overrides = {});

  // rados_conf_get: the client's effective value of a setting.
  Result<std::string> conf_get(const std::string& key) const;

  RadosCluster(RadosCluster&& o) noexcept
      : api_(o.api_), cluster_(std::exchange(o.cluster_, nullptr)) {}
  RadosCluster& operator=(RadosCluster&& o) noexcept {
    if (this != &o) {
      reset();
      api_ = o.api_;
      cluster_ = std::exchange(o.cluster_, nullptr);
    }
    return *this;
  }
  RadosCluster(const RadosCluster&) = delete;
  RadosCluster& operator=(const RadosCluster&) = delete;
  ~RadosCluster() { reset(); }

  rados_t get() const { return cluster_; }
  // The loaded librados/librbd functions (process lifetime).
  const CephApi& api() const { return *api_; }

  // This client's address as the OSDs see it ("127.0.0.1:0/3012345678"): the value an
  // `osd blocklist add` needs to fence this process.
  Result<std::string> client_address() const;

  // rados_mon_command with a JSON command; returns the output buffer (status text on error).
  Result<std::string> mon_command(const std::string& json) const;

 private:
  RadosCluster(const CephApi* api, rados_t cluster) : api_(api), cluster_(cluster) {}
  void reset();
  const CephApi* api_;
  rados_t cluster_ = nullptr;
};

class RadosIoCtx {
 public:
  static Result<RadosIoCtx> create(const RadosCluster& cluster, const std::string& pool,
                                   const std::string& ns = "");

  RadosIoCtx(RadosIoCtx&& o) noexcept : api_(o.api_), io_(std::exchange(o.io_, nullptr)) {}
  RadosIoCtx& operator=(RadosIoCtx&& o) noexcept {
    if (this != &o) {
      reset();
      api_ = o.api_;
      io_ = std::exchange(o.io_, nullptr);
    }
    return *this;
  }
  RadosIoCtx(const RadosIoCtx&) = delete;
  RadosIoCtx& operator=(const RadosIoCtx&) = delete;
  ~RadosIoCtx() { reset(); }

  rados_ioctx_t get() const { return io_; }
  const CephApi& api() const { return *api_; }

 private:
  RadosIoCtx(const CephApi* api, rados_ioctx_t io) : api_(api), io_(io) {}
  void reset();
  const CephApi* api_;
  rados_ioctx_t io_ = nullptr;
};

class RbdImage {
 public:
  // Opens image (at snapshot, read-only, when given). read_only opens without taking part in
  // exclusive-lock hand-off.
  static Result<RbdImage> open(const RadosIoCtx& io, const std::string& image,
                               const std::optional<std::string>& snapshot = std::nullopt,
                               bool read_only = false);

  RbdImage(RbdImage&& o) noexcept
      : api_(o.api_), image_(std::exchange(o.image_, nullptr)), name_(std::move(o.name_)) {}
  RbdImage& operator=(RbdImage&& o) noexcept {
    if (this != &o) {
      reset();
      api_ = o.api_;
      image_ = std::exchange(o.image_, nullptr);
      name_ = std::move(o.name_);
    }
    return *this;
  }
  RbdImage(const RbdImage&) = delete;
  RbdImage& operator=(const RbdImage&) = delete;
  ~RbdImage() { reset(); }

  rbd_image_t get() const { return image_; }
  const std::string& name() const { return name_; }
  const CephApi& api() const { return *api_; }

  Result<uint64_t> size() const;

 private:
  RbdImage(const CephApi* api, rbd_image_t image, std::string name)
      : api_(api), image_(image), name_(std::move(name)) {}
  void reset();
  const CephApi* api_;
  rbd_image_t image_ = nullptr;
  std::string name_;
};

}  // namespace hcnode::blockdev
