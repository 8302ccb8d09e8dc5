// FileTree over a Gluster volume through gfapi (gluster pools). The volume connection comes from
// StorageSessions (one glfs_t per volume per process: glfs_init/glfs_fini cost seconds).
#include <dirent.h>
#include <fcntl.h>
#include <glusterfs/api/glfs.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cstring>
#include <mutex>

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "blockdev/gluster/glfs_handles.hpp"
#include "storage/file/file_tree.hpp"

namespace hcnode::storage {

namespace {

using blockdev::GlfsFile;
using blockdev::GlfsVolume;

// The one owner of a glfs_opendir handle (glfs_closedir).
class GlfsDir {
 public:
  explicit GlfsDir(glfs_fd_t* fd) : fd_(fd) {}
  GlfsDir(const GlfsDir&) = delete;
  GlfsDir& operator=(const GlfsDir&) = delete;
  ~GlfsDir() {
    if (fd_ != nullptr) glfs_closedir(fd_);
  }
  glfs_fd_t* get() const { return fd_; }

 private:
  glfs_fd_t* fd_;
};

class GlfsTreeFile final : public TreeFile {
 public:
  GlfsTreeFile(std::shared_ptr<GlfsVolume> volume, GlfsFile file, std::string path)
      : volume_(std::move(volume)), file_(std::move(file)), path_(std::move(path)) {}

  Status pread_all(void* buf, size_t count, uint64_t offset) override {
    return file_.pread_all(buf, count, offset);
  }
  Status pwrite_all(const void* buf, size_t count, uint64_t offset) override {
    return file_.pwrite_all(buf, count, offset);
  }
  Status truncate(uint64_t size) override {
    if (glfs_ftruncate(file_.get(), static_cast<off_t>(size), nullptr, nullptr) != 0) {
      return fail(from_errno("glfs_ftruncate " + path_));
    }
    return {};
  }
  Status fsync() override { return file_.fsync(); }
  Result<FileStat> stat() override {
    struct stat st{};
    if (glfs_fstat(file_.get(), &st) != 0) return fail(from_errno("glfs_fstat " + path_));
    return to_file_stat(st);
  }

 private:
  std::shared_ptr<GlfsVolume> volume_;  // outlives file_
  GlfsFile file_;
  std::string path_;
};

class GlfsTree final : public FileTree {
 public:
  GlfsTree(GlusterPool pool, std::shared_ptr<blockdev::StorageSessions> sessions)
      : pool_(std::move(pool)), sessions_(std::move(sessions)) {}

  blockdev::DiskUri uri_of(const std::string& path) const override {
    return blockdev::DiskUri{blockdev::GlusterLocation{pool_.host, pool_.port, pool_.volume, path}};
  }

  Result<FileStat> stat(const std::string& path) override {
    auto fs = HCN_TRY(volume());
    struct stat st{};
    if (glfs_stat(fs->get(), path.c_str(), &st) != 0) return fail(from_errno(where(path, "stat")));
    return to_file_stat(st);
  }

  Result<std::vector<DirEntry>> list_dir(const std::string& path) override {
    auto fs = HCN_TRY(volume());
    GlfsDir dir(glfs_opendir(fs->get(), path.c_str()));
    if (dir.get() == nullptr) return fail(from_errno(where(path, "opendir")));
    std::vector<DirEntry> out;
    for (;;) {
      struct stat st{};
      dirent entry{};
      dirent* result = nullptr;
      if (glfs_readdirplus_r(dir.get(), &st, &entry, &result) != 0) {
        return fail(from_errno(where(path, "readdirplus")));
      }
      if (result == nullptr) break;
      std::string name = result->d_name;
      if (name == "." || name == "..") continue;
      out.push_back(DirEntry{name, to_file_stat(st)});
    }
    return out;
  }

  Status mkdir_p(const std::string& path) override {
    auto fs = HCN_TRY(volume());
    size_t pos = 0;
    while (pos != std::string::npos) {
      pos = path.find('/', pos + 1);
      std::string cur = path.substr(0, pos);
      if (cur.empty()) continue;
      if (glfs_mkdir(fs->get(), cur.c_str(), 0755) != 0 && errno != EEXIST) {
        return fail(from_errno(where(cur, "mkdir")));
      }
    }
    return {};
  }

  Result<std::unique_ptr<TreeFile>> open(const std::string& path, int flags) override {
    auto fs = HCN_TRY(volume());
    auto file = HCN_TRY(GlfsFile::open(*fs, path, flags));
    return std::unique_ptr<TreeFile>(std::make_unique<GlfsTreeFile>(fs, std::move(file), path));
  }

  Result<std::unique_ptr<TreeFile>> create_exclusive(const std::string& path,
                                                     mode_t mode) override {
    auto fs = HCN_TRY(volume());
    auto file = GlfsFile::create(*fs, path, O_RDWR | O_CREAT | O_EXCL, mode);
    if (!file) return fail(file.error());
    return std::unique_ptr<TreeFile>(std::make_unique<GlfsTreeFile>(fs, std::move(*file), path));
  }

  Status rename_noreplace(const std::string& from, const std::string& to) override {
    auto fs = HCN_TRY(volume());
    // gfapi has no RENAME_NOREPLACE. link(2) never replaces, atomically: publish the file
    // under its new name with a hard link, then drop the old name (see file_tree.hpp).
    if (glfs_link(fs->get(), from.c_str(), to.c_str()) != 0) {
      if (errno == EEXIST) return fail(EEXIST, where(to, "rename target exists"));
      return fail(from_errno(where(from, "link to " + to)));
    }
    if (glfs_unlink(fs->get(), from.c_str()) != 0) {
      // The file is published; the old (temporary) name is a second link to it, which
      // purge_incomplete() removes later without touching the published name.
      spdlog::warn("{}", where(from, fmt::format("unlink after linking it to {}: {}", to,
                                                 std::strerror(errno))));
    }
    return {};
  }

  Status rename_replace(const std::string& from, const std::string& to) override {
    auto fs = HCN_TRY(volume());
    if (glfs_rename(fs->get(), from.c_str(), to.c_str()) != 0) {
      return fail(from_errno(where(from, "rename to " + to)));
    }
    return {};
  }

  Status unlink(const std::string& path) override {
    auto fs = HCN_TRY(volume());
    if (glfs_unlink(fs->get(), path.c_str()) != 0) return fail(from_errno(where(path, "unlink")));
    return {};
  }

  Status chmod(const std::string& path, mode_t mode) override {
    auto fs = HCN_TRY(volume());
    if (glfs_chmod(fs->get(), path.c_str(), mode) != 0) return fail(from_errno(where(path, "chmod")));
    return {};
  }

  Status set_xattr(const std::string& path, const std::string& name,
                   const std::string& value) override {
    auto fs = HCN_TRY(volume());
    if (glfs_setxattr(fs->get(), path.c_str(), name.c_str(), value.data(), value.size(), 0) != 0) {
      return fail(from_errno(where(path, "setxattr " + name)));
    }
    return {};
  }

  Result<std::optional<std::string>> get_xattr(const std::string& path,
                                               const std::string& name) override {
    auto fs = HCN_TRY(volume());
    char buf[256];
    ssize_t n = glfs_getxattr(fs->get(), path.c_str(), name.c_str(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == ENODATA) return std::optional<std::string>();
      if (errno == ERANGE) return std::optional<std::string>(std::string());
      return fail(from_errno(where(path, "getxattr " + name)));
    }
    return std::optional<std::string>(std::string(buf, static_cast<size_t>(n)));
  }

  Status remove_xattr(const std::string& path, const std::string& name) override {
    auto fs = HCN_TRY(volume());
    if (glfs_removexattr(fs->get(), path.c_str(), name.c_str()) != 0 && errno != ENODATA) {
      return fail(from_errno(where(path, "removexattr " + name)));
    }
    return {};
  }

  Result<PoolSpace> statvfs(const std::string& path) override {
    auto fs = HCN_TRY(volume());
    struct statvfs st{};
    if (glfs_statvfs(fs->get(), path.c_str(), &st) != 0) {
      return fail(from_errno(where(path, "statvfs")));
    }
    return PoolSpace{static_cast<uint64_t>(st.f_blocks) * st.f_frsize,
                     static_cast<uint64_t>(st.f_bavail) * st.f_frsize};
  }

 private:
  Result<std::shared_ptr<GlfsVolume>> volume() {
    std::lock_guard lock(mu_);
    if (!volume_) {
      volume_ = HCN_TRY(sessions_->gluster(
          blockdev::GlusterLocation{pool_.host, pool_.port, pool_.volume, "/"}));
    }
    return volume_;
  }

  std::string where(const std::string& path, const std::string& op) const {
    return fmt::format("glfs_{} gluster://{}:{}/{}{}", op, pool_.host, pool_.port, pool_.volume,
                       path);
  }

  GlusterPool pool_;
  std::shared_ptr<blockdev::StorageSessions> sessions_;
  std::mutex mu_;
  std::shared_ptr<GlfsVolume> volume_;  // guarded by mu_
};

}  // namespace

std::unique_ptr<FileTree> make_glfs_tree(const GlusterPool& pool,
                                         std::shared_ptr<blockdev::StorageSessions> sessions) {
  return std::make_unique<GlfsTree>(pool, std::move(sessions));
}

}  // namespace hcnode::storage
