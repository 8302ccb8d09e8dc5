// RAII owners of gfapi objects.
//
//   GlfsVolume  glfs_t      glfs_new + glfs_set_volfile_server + glfs_init ... glfs_fini
//   GlfsFile    glfs_fd_t   glfs_open / glfs_creat ... glfs_close
//
// glfs_fini takes ~10 s on these machines (machine-notes.md), so a process keeps ONE GlfsVolume
// per volume for its whole life and shares it between disks; never open one per operation.
// gfapi objects are thread-safe; its async callbacks run on gfapi's own threads.
//
// gfapi is not linked: GlfsVolume::connect loads it (gfapi_api.hpp) and every object carries
// the table it was made with.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "base/result.hpp"
#include "blockdev/gluster/gfapi_api.hpp"

namespace hcnode::blockdev {

struct GlusterServer {
  std::string host;
  uint16_t port = 24007;
  std::string volume;
  std::string log_file = "/dev/null";  // gfapi's own log ("-" = stderr)
  int log_level = 3;                   // gfapi: 0 none .. 9 trace; 3 = errors/criticals

  // Reads HCNODE_GLUSTER_HOST (required), HCNODE_GLUSTER_PORT, HCNODE_GLUSTER_VOLUME (required)
  // and HCNODE_GLUSTER_LOG, as `deploy/devcluster.sh env` prints them.
  static Result<GlusterServer> from_env();
};

class GlfsVolume {
 public:
  // Loads gfapi if this process has not yet (ELIBACC/ELIBBAD: gfapi_api()), then connects to
  // the volume (fetches its volfile from glusterd, connects to the bricks).
  static Result<GlfsVolume> connect(const GlusterServer& server);
  // The client options connect() sets before glfs_init (write-behind's strict write ordering:
  // see the .cpp). Separate so a unit test can check them against a fake function table.
  static Status set_client_options(const GfapiApi& api, glfs_t* fs);

  GlfsVolume(GlfsVolume&& o) noexcept
      : api_(o.api_), fs_(std::exchange(o.fs_, nullptr)), name_(std::move(o.name_)), fini_(o.fini_) {}
  GlfsVolume& operator=(GlfsVolume&& o) noexcept {
    if (this != &o) {
      reset();
      api_ = o.api_;
      fs_ = std::exchange(o.fs_, nullptr);
      name_ = std::move(o.name_);
      fini_ = o.fini_;
    }
    return *this;
  }
  GlfsVolume(const GlfsVolume&) = delete;
  GlfsVolume& operator=(const GlfsVolume&) = delete;
  ~GlfsVolume() { reset(); }

  glfs_t* get() const { return fs_; }
  const std::string& name() const { return name_; }
  // The loaded gfapi functions (process lifetime).
  const GfapiApi& api() const { return *api_; }

  Status unlink(const std::string& path) const;

  // The process is about to exit: skip glfs_fini when this object goes (it costs ~10 s and
  // adds nothing then — every file was closed, every acknowledged write is on the bricks, and
  // the kernel closes the sockets). Only for a process's final teardown.
  void skip_fini_at_exit() { fini_ = false; }

 private:
  GlfsVolume(const GfapiApi* api, glfs_t* fs, std::string name)
      : api_(api), fs_(fs), name_(std::move(name)) {}
  void reset();
  const GfapiApi* api_;
  glfs_t* fs_ = nullptr;
  std::string name_;
  bool fini_ = true;
};

class GlfsFile {
 public:
  // glfs_open (flags as open(2), O_CREAT not allowed by gfapi).
  static Result<GlfsFile> open(const GlfsVolume& volume, const std::string& path, int flags);
  // glfs_creat: creates (or truncates with O_TRUNC) and opens.
  static Result<GlfsFile> create(const GlfsVolume& volume, const std::string& path, int flags,
                                 mode_t mode = 0644);

  GlfsFile(GlfsFile&& o) noexcept
      : api_(o.api_), fd_(std::exchange(o.fd_, nullptr)), path_(std::move(o.path_)) {}
  GlfsFile& operator=(GlfsFile&& o) noexcept {
    if (this != &o) {
      reset();
      api_ = o.api_;
      fd_ = std::exchange(o.fd_, nullptr);
      path_ = std::move(o.path_);
    }
    return *this;
  }
  GlfsFile(const GlfsFile&) = delete;
  GlfsFile& operator=(const GlfsFile&) = delete;
  ~GlfsFile() { reset(); }

  glfs_fd_t* get() const { return fd_; }
  const GfapiApi& api() const { return *api_; }

  // Synchronous helpers for control-plane use and tests (the data path uses the async calls).
  // Short transfers are errors (EIO): gfapi on a healthy volume completes whole requests.
  Status pwrite_all(const void* buf, size_t count, uint64_t offset) const;
  Status pread_all(void* buf, size_t count, uint64_t offset) const;
  Status fsync() const;

 private:
  GlfsFile(const GfapiApi* api, glfs_fd_t* fd, std::string path)
      : api_(api), fd_(fd), path_(std::move(path)) {}
  void reset();
  const GfapiApi* api_;
  glfs_fd_t* fd_ = nullptr;
  std::string path_;
};

}  // namespace hcnode::blockdev
