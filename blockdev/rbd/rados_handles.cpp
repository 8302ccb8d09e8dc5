#include "blockdev/rbd/rados_handles.hpp"

#include <cstdlib>

#include <spdlog/spdlog.h>

namespace hcnode::blockdev {

Result<CephClientConfig> CephClientConfig::from_env() {
  CephClientConfig config;
  const char* conf = std::getenv("HCNODE_CEPH_CONF");
  if (conf == nullptr || *conf == '\0') {
    return fail(ENOENT,
                "HCNODE_CEPH_CONF is not set (run: eval \"$(deploy/devcluster.sh env)\")");
  }
  config.conf_path = conf;
  if (const char* id = std::getenv("HCNODE_CEPH_ID"); id != nullptr && *id != '\0') {
    config.id = id;
  }
  if (const char* keyring = std::getenv("HCNODE_CEPH_KEYRING"); keyring != nullptr) {
    config.keyring = keyring;
  }
  return config;
}

Result<RadosCluster> RadosCluster::connect(
    const CephClientConfig& config,
    const std::vector<std::pair<std::string, std::string>>& overrides) {
  const CephApi* api = HCN_TRY(ceph_api());
  rados_t cluster = nullptr;
  const std::string who = "client." + config.id;
  if (int r = api->rados_create2(&cluster, "ceph", who.c_str(), 0); r < 0) {
    return fail(from_negative_errno(r, "rados_create2 " + who));
  }
  RadosCluster owner(api, cluster);
  if (int r = api->rados_conf_read_file(cluster, config.conf_path.c_str()); r < 0) {
    return fail(from_negative_errno(r, "rados_conf_read_file " + config.conf_path));
  }
  if (!config.keyring.empty()) {
    if (int r = api->rados_conf_set(cluster, "keyring", config.keyring.c_str()); r < 0) {
      return fail(from_negative_errno(r, "rados_conf_set keyring"));
    }
  }
  for (const auto& [key, value] : overrides) {
    if (int r = api->rados_conf_set(cluster, key.c_str(), value.c_str()); r < 0) {
      return fail(from_negative_errno(r, "rados_conf_set " + key + "=" + value));
    }
  }
  if (int r = api->rados_connect(cluster); r < 0) {
    return fail(from_negative_errno(r, "rados_connect as " + who + " with " + config.conf_path));
  }
  return owner;
}

void RadosCluster::reset() {
  if (cluster_ != nullptr) {
    api_->rados_shutdown(cluster_);
    cluster_ = nullptr;
  }
}

Result<std::string> RadosCluster::conf_get(const std::string& key) const {
  char value[256];
  if (int r = api_->rados_conf_get(cluster_, key.c_str(), value, sizeof value); r < 0) {
    return fail(from_negative_errno(r, "rados_conf_get " + key));
  }
  return std::string(value);
}

Result<std::string> RadosCluster::client_address() const {
  char* addrs = nullptr;
  if (int r = api_->rados_getaddrs(cluster_, &addrs); r < 0) {
    return fail(from_negative_errno(r, "rados_getaddrs"));
  }
  std::string result(addrs);
  // rados_getaddrs returns a malloc'ed string the caller frees.
  std::free(addrs);
  return result;
}

Result<std::string> RadosCluster::mon_command(const std::string& json) const {
  const char* cmd[] = {json.c_str()};
  char* outbuf = nullptr;
  size_t outlen = 0;
  char* outs = nullptr;
  size_t outslen = 0;
  int r = api_->rados_mon_command(cluster_, cmd, 1, "", 0, &outbuf, &outlen, &outs, &outslen);
  std::string out(outbuf != nullptr ? outbuf : "", outlen);
  std::string status(outs != nullptr ? outs : "", outslen);
  api_->rados_buffer_free(outbuf);
  api_->rados_buffer_free(outs);
  if (r < 0) {
    return fail(from_negative_errno(r, "mon command " + json + (status.empty() ? "" : ": " + status)));
  }
  return out;
}

Result<RadosIoCtx> RadosIoCtx::create(const RadosCluster& cluster, const std::string& pool,
                                      const std::string& ns) {
  const CephApi& api = cluster.api();
  rados_ioctx_t io = nullptr;
  if (int r = api.rados_ioctx_create(cluster.get(), pool.c_str(), &io); r < 0) {
    return fail(from_negative_errno(r, "rados_ioctx_create pool " + pool));
  }
  if (!ns.empty()) {
    api.rados_ioctx_set_namespace(io, ns.c_str());
  }
  return RadosIoCtx(&api, io);
}

void RadosIoCtx::reset() {
  if (io_ != nullptr) {
    api_->rados_ioctx_destroy(io_);
    io_ = nullptr;
  }
}

Result<RbdImage> RbdImage::open(const RadosIoCtx& io, const std::string& image,
                                const std::optional<std::string>& snapshot, bool read_only) {
  const CephApi& api = io.api();
  rbd_image_t handle = nullptr;
  const char* snap = snapshot ? snapshot->c_str() : nullptr;
  int r = read_only ? api.rbd_open_read_only(io.get(), image.c_str(), &handle, snap)
                    : api.rbd_open(io.get(), image.c_str(), &handle, snap);
  if (r < 0) {
    return fail(from_negative_errno(r, "rbd_open " + image + (snapshot ? "@" + *snapshot : "")));
  }
  return RbdImage(&api, handle, image);
}

void RbdImage::reset() {
  if (image_ != nullptr) {
    if (int r = api_->rbd_close(image_); r < 0) {
      // rbd_close flushes the cache; a failure here means data the guest saw acknowledged might
      // not be durable only if something acknowledged before flush — which hcnode never does.
      spdlog::error("rbd_close {}: error {}", name_, r);
    }
    image_ = nullptr;
  }
}

Result<uint64_t> RbdImage::size() const {
  uint64_t size = 0;
  if (int r = api_->rbd_get_size(image_, &size); r < 0) {
    return fail(from_negative_errno(r, "rbd_get_size " + name_));
  }
  return size;
}

}  // namespace hcnode::blockdev
