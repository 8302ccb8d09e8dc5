#include "blockdev/open_backend.hpp"

#include "blockdev/qcow2/qcow2_backend.hpp"

#include <spdlog/spdlog.h>

#include "blockdev/file/file_backend.hpp"
#include "blockdev/gluster/gluster_backend.hpp"
#include "blockdev/rbd/rbd_backend.hpp"

namespace hcnode::blockdev {

const char* to_string(CachePolicy policy) {
  switch (policy) {
    case CachePolicy::kNone: return "none";
    case CachePolicy::kWriteback: return "writeback";
  }
  return "unknown";
}

Result<CachePolicy> parse_cache_policy(const std::string& text) {
  if (text == "none") return CachePolicy::kNone;
  if (text == "writeback") return CachePolicy::kWriteback;
  return fail(EINVAL, "cache policy '" + text + "' (expected none or writeback)");
}

Result<std::shared_ptr<RadosCluster>> StorageSessions::rados() {
  std::lock_guard lock(mu_);
  if (rados_) {
    return rados_;
  }
  CephClientConfig ceph;
  if (config_.ceph) {
    ceph = *config_.ceph;
  } else {
    ceph = HCN_TRY(CephClientConfig::from_env());
  }
  // librbd's cache is a client-wide setting, so it is fixed here, before connecting.
  // writethrough_until_flush: a guest that never flushes never has acknowledged writes that
  // exist only in the cache (librbd docs, "RBD cache settings").
  std::vector<std::pair<std::string, std::string>> overrides;
  if (config_.rbd_cache == CachePolicy::kWriteback) {
    overrides = {{"rbd_cache", "true"}, {"rbd_cache_writethrough_until_flush", "true"}};
  } else {
    overrides = {{"rbd_cache", "false"}};
  }
  overrides.insert(overrides.end(), config_.rados_overrides.begin(), config_.rados_overrides.end());
  auto cluster = HCN_TRY(RadosCluster::connect(ceph, overrides));
  auto address = cluster.client_address();
  if (address) {
    rados_address_ = *address;
  } else {
    spdlog::warn("rados client address unknown: {}", address.error().message());
  }
  rados_ = std::make_shared<RadosCluster>(std::move(cluster));
  spdlog::info("rados: connected as client.{} from {} (rbd cache {})", ceph.id,
               rados_address_.value_or("?"), to_string(config_.rbd_cache));
  return rados_;
}

std::optional<std::string> StorageSessions::rados_client_address() const {
  std::lock_guard lock(mu_);
  return rados_address_;
}

Result<std::shared_ptr<GlfsVolume>> StorageSessions::gluster(const GlusterLocation& where) {
  std::lock_guard lock(mu_);
  auto key = std::make_tuple(where.host, where.port, where.volume);
  if (auto it = gluster_.find(key); it != gluster_.end()) {
    return it->second;
  }
  GlusterServer server;
  server.host = where.host;
  server.port = where.port;
  server.volume = where.volume;
  server.log_file = config_.gluster_log_file;
  server.log_level = config_.gluster_log_level;
  auto volume = std::make_shared<GlfsVolume>(HCN_TRY(GlfsVolume::connect(server)));
  gluster_.emplace(std::move(key), volume);
  return volume;
}

const char* to_string(ImageFormat format) {
  return format == ImageFormat::kQcow2 ? "qcow2" : "raw";
}

Result<ImageFormat> parse_image_format(const std::string& text) {
  if (text == "raw") return ImageFormat::kRaw;
  if (text == "qcow2") return ImageFormat::kQcow2;
  return fail(EINVAL, "unknown image format '" + text + "' (raw, qcow2)");
}

Result<std::shared_ptr<Backend>> open_backend(const DiskUri& uri, const BackendOptions& options,
                                              StorageSessions& sessions) {
  if (options.format == ImageFormat::kQcow2) {
    return qcow2::open_qcow2(uri, options, sessions);
  }
  if (const auto* rbd = std::get_if<RbdLocation>(&uri.location)) {
    auto cluster = with_context(sessions.rados(), uri.to_string());
    if (!cluster) return fail(cluster.error());
    auto backend = HCN_TRY(RbdBackend::open(std::move(*cluster), *rbd, options));
    return std::shared_ptr<Backend>(std::move(backend));
  }
  if (const auto* gluster = std::get_if<GlusterLocation>(&uri.location)) {
    auto volume = with_context(sessions.gluster(*gluster), uri.to_string());
    if (!volume) return fail(volume.error());
    auto backend = HCN_TRY(GlusterBackend::open(std::move(*volume), *gluster, options));
    return std::shared_ptr<Backend>(std::move(backend));
  }
  const auto& file = std::get<FileLocation>(uri.location);
  auto backend = HCN_TRY(FileBackend::open(file, options));
  return std::shared_ptr<Backend>(std::move(backend));
}

void StorageSessions::prepare_process_exit() {
  std::lock_guard lock(mu_);
  for (auto& [key, volume] : gluster_) volume->skip_fini_at_exit();
}

}  // namespace hcnode::blockdev
