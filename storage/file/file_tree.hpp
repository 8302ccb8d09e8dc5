// A directory tree the file pools keep their images in: a local directory (POSIX calls) or a
// directory on a Gluster volume (gfapi). The file pool driver (file_pool.cpp) is written once
// against this; local_tree.cpp and glfs_tree.cpp are the two implementations. Internal to
// storage/. Paths are absolute within the tree's root (the local file system, or the volume).
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "blockdev/disk_uri.hpp"
#include "blockdev/open_backend.hpp"
#include "storage/image_info.hpp"

namespace hcnode::storage {

struct FileStat {
  uint64_t size = 0;
  uint64_t allocated = 0;  // st_blocks * 512
  mode_t mode = 0;
  int64_t mtime = 0;
  bool regular = false;
};

// Both trees stat files the same way (stat(2) and glfs_stat fill the same struct stat).
inline FileStat to_file_stat(const struct stat& st) {
  FileStat f;
  f.size = static_cast<uint64_t>(st.st_size);
  f.allocated = static_cast<uint64_t>(st.st_blocks) * 512;
  f.mode = st.st_mode & 07777;
  f.mtime = st.st_mtim.tv_sec;
  f.regular = S_ISREG(st.st_mode);
  return f;
}

struct DirEntry {
  std::string name;
  FileStat stat;
};

// An open file (one RAII owner: a local Fd or a GlfsFile). Synchronous, control-plane only.
class TreeFile {
 public:
  virtual ~TreeFile() = default;
  virtual Status pread_all(void* buf, size_t count, uint64_t offset) = 0;
  virtual Status pwrite_all(const void* buf, size_t count, uint64_t offset) = 0;
  virtual Status truncate(uint64_t size) = 0;
  virtual Status fsync() = 0;
  virtual Result<FileStat> stat() = 0;
};

class FileTree {
 public:
  virtual ~FileTree() = default;

  // The disk URI of a path in this tree (file:/… or gluster://host:port/volume/…).
  virtual blockdev::DiskUri uri_of(const std::string& path) const = 0;

  virtual Result<FileStat> stat(const std::string& path) = 0;  // ENOENT when absent
  virtual Result<std::vector<DirEntry>> list_dir(const std::string& path) = 0;
  virtual Status mkdir_p(const std::string& path) = 0;
  virtual Result<std::unique_ptr<TreeFile>> open(const std::string& path, int flags) = 0;
  // O_CREAT | O_EXCL: EEXIST if the path exists.
  virtual Result<std::unique_ptr<TreeFile>> create_exclusive(const std::string& path,
                                                             mode_t mode) = 0;
  // Atomic rename; `to` must not exist (EEXIST), also against a concurrent creator of `to`:
  // local trees use renameat2(RENAME_NOREPLACE); gfapi has no such flag, so the gluster tree
  // links the file under `to` (link(2) never replaces) and then unlinks `from`.
  virtual Status rename_noreplace(const std::string& from, const std::string& to) = 0;
  // Atomic rename that may replace `to`.
  virtual Status rename_replace(const std::string& from, const std::string& to) = 0;
  virtual Status unlink(const std::string& path) = 0;
  virtual Status chmod(const std::string& path, mode_t mode) = 0;
  // Extended attributes: ENOTSUP/EOPNOTSUPP when the file system has none.
  virtual Status set_xattr(const std::string& path, const std::string& name,
                           const std::string& value) = 0;
  virtual Result<std::optional<std::string>> get_xattr(const std::string& path,
                                                       const std::string& name) = 0;
  virtual Status remove_xattr(const std::string& path, const std::string& name) = 0;
  virtual Result<PoolSpace> statvfs(const std::string& path) = 0;
};

// Connects nothing: the gluster tree gets its volume from the sessions on first use.
std::unique_ptr<FileTree> make_local_tree();
std::unique_ptr<FileTree> make_glfs_tree(const GlusterPool& pool,
                                         std::shared_ptr<blockdev::StorageSessions> sessions);

}  // namespace hcnode::storage
