#include "blockdev/gluster/glfs_handles.hpp"

#include <fcntl.h>

#include <charconv>
#include <cstdlib>

#include <spdlog/spdlog.h>

namespace hcnode::blockdev {

Result<GlusterServer> GlusterServer::from_env() {
  GlusterServer server;
  const char* host = std::getenv("HCNODE_GLUSTER_HOST");
  const char* volume = std::getenv("HCNODE_GLUSTER_VOLUME");
  if (host == nullptr || *host == '\0' || volume == nullptr || *volume == '\0') {
    return fail(ENOENT, "HCNODE_GLUSTER_HOST/HCNODE_GLUSTER_VOLUME are not set "
                        "(run: eval \"$(deploy/devcluster.sh env)\")");
  }
  server.host = host;
  server.volume = volume;
  if (const char* port = std::getenv("HCNODE_GLUSTER_PORT"); port != nullptr && *port != '\0') {
    unsigned value = 0;
    std::string_view text(port);
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || ptr != text.data() + text.size() || value == 0 || value > 65535) {
      return fail(EINVAL, "HCNODE_GLUSTER_PORT '" + std::string(text) + "' is not a port number");
    }
    server.port = static_cast<uint16_t>(value);
  }
  if (const char* log = std::getenv("HCNODE_GLUSTER_LOG"); log != nullptr && *log != '\0') {
    server.log_file = log;
  }
  return server;
}

// The client graph's write-behind (performance/write-behind, on by default and kept by group
// virt) acknowledges a buffered write before it reaches the bricks. With several writes in
// flight, glusterfs 10.3 lets such an acknowledged write land AFTER a later write that overlaps
// it: the later data is lost. hcnode's qcow2 layer does exactly that on every first write to a
// cluster (the whole cluster, backing data around the guest's bytes, then, once that write
// completed, the guest's next writes into the same cluster in place), so a clone on Gluster lost
// whole runs of 4 KiB writes (the integration test "qcow2 clone on Gluster"; a bare gfapi program
// doing the same lost 15-55 of its 256 blocks in each of 11 runs, none in 7 runs with this
// option, nor with O_DIRECT, which write-behind leaves alone under strict-o-direct).
// strict-write-ordering keeps every write behind the earlier ones it was acknowledged after,
// which POSIX (and a virtio-blk guest) take for granted; write-behind still batches and lies.
Status GlfsVolume::set_client_options(const GfapiApi& api, glfs_t* fs) {
  if (api.glfs_set_xlator_option(fs, "*-write-behind", "strict-write-ordering", "on") < 0) {
    return fail(from_errno("glfs_set_xlator_option *-write-behind strict-write-ordering on"));
  }
  return {};
}

Result<GlfsVolume> GlfsVolume::connect(const GlusterServer& server) {
  const GfapiApi* api = HCN_TRY(gfapi_api());
  glfs_t* fs = api->glfs_new(server.volume.c_str());
  if (fs == nullptr) {
    return fail(from_errno("glfs_new " + server.volume));
  }
  GlfsVolume owner(api, fs, server.volume);
  const std::string where = server.host + ":" + std::to_string(server.port) + "/" + server.volume;
  if (api->glfs_set_volfile_server(fs, "tcp", server.host.c_str(), server.port) < 0) {
    return fail(from_errno("glfs_set_volfile_server " + where));
  }
  if (api->glfs_set_logging(fs, server.log_file.c_str(), server.log_level) < 0) {
    return fail(from_errno("glfs_set_logging " + server.log_file));
  }
  HCN_TRY_STATUS(set_client_options(*api, fs));
  if (api->glfs_init(fs) < 0) {
    return fail(from_errno("glfs_init " + where));
  }
  return owner;
}

void GlfsVolume::reset() {
  if (fs_ != nullptr) {
    if (fini_) api_->glfs_fini(fs_);  // slow (~10 s here): see the header
    fs_ = nullptr;
  }
}

Status GlfsVolume::unlink(const std::string& path) const {
  if (api_->glfs_unlink(fs_, path.c_str()) < 0) {
    return fail(from_errno("glfs_unlink " + name_ + path));
  }
  return {};
}

Result<GlfsFile> GlfsFile::open(const GlfsVolume& volume, const std::string& path, int flags) {
  glfs_fd_t* fd = volume.api().glfs_open(volume.get(), path.c_str(), flags);
  if (fd == nullptr) {
    return fail(from_errno("glfs_open " + volume.name() + path));
  }
  return GlfsFile(&volume.api(), fd, volume.name() + path);
}

Result<GlfsFile> GlfsFile::create(const GlfsVolume& volume, const std::string& path, int flags,
                                  mode_t mode) {
  glfs_fd_t* fd = volume.api().glfs_creat(volume.get(), path.c_str(), flags, mode);
  if (fd == nullptr) {
    return fail(from_errno("glfs_creat " + volume.name() + path));
  }
  return GlfsFile(&volume.api(), fd, volume.name() + path);
}

void GlfsFile::reset() {
  if (fd_ != nullptr) {
    if (api_->glfs_close(fd_) < 0) {
      spdlog::error("glfs_close {}: errno {}", path_, errno);
    }
    fd_ = nullptr;
  }
}

Status GlfsFile::pwrite_all(const void* buf, size_t count, uint64_t offset) const {
  ssize_t r = api_->glfs_pwrite(fd_, buf, count, static_cast<off_t>(offset), 0, nullptr, nullptr);
  if (r < 0) {
    return fail(from_errno("glfs_pwrite " + path_ + " at " + std::to_string(offset)));
  }
  if (static_cast<size_t>(r) != count) {
    return fail(EIO, "glfs_pwrite " + path_ + ": short write " + std::to_string(r) + "/" +
                         std::to_string(count));
  }
  return {};
}

Status GlfsFile::pread_all(void* buf, size_t count, uint64_t offset) const {
  ssize_t r = api_->glfs_pread(fd_, buf, count, static_cast<off_t>(offset), 0, nullptr);
  if (r < 0) {
    return fail(from_errno("glfs_pread " + path_ + " at " + std::to_string(offset)));
  }
  if (static_cast<size_t>(r) != count) {
    return fail(EIO, "glfs_pread " + path_ + ": short read " + std::to_string(r) + "/" +
                         std::to_string(count));
  }
  return {};
}

Status GlfsFile::fsync() const {
  if (api_->glfs_fsync(fd_, nullptr, nullptr) < 0) {
    return fail(from_errno("glfs_fsync " + path_));
  }
  return {};
}

}  // namespace hcnode::blockdev
