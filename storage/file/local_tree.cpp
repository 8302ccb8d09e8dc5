// FileTree over the local file system (dir pools).
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>  // renameat2, RENAME_NOREPLACE (glibc >= 2.28)
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <spdlog/fmt/fmt.h>

#include "base/fd.hpp"
#include "storage/file/file_tree.hpp"

namespace hcnode::storage {

namespace {

class LocalFile final : public TreeFile {
 public:
  LocalFile(Fd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}

  Status pread_all(void* buf, size_t count, uint64_t offset) override {
    auto* p = static_cast<uint8_t*>(buf);
    while (count > 0) {
      ssize_t r = ::pread(fd_.get(), p, count, static_cast<off_t>(offset));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return fail(from_errno(fmt::format("pread {} at {}", path_, offset)));
      if (r == 0) return fail(EIO, fmt::format("pread {} at {}: unexpected end of file", path_, offset));
      p += r;
      count -= static_cast<size_t>(r);
      offset += static_cast<uint64_t>(r);
    }
    return {};
  }

  Status pwrite_all(const void* buf, size_t count, uint64_t offset) override {
    const auto* p = static_cast<const uint8_t*>(buf);
    while (count > 0) {
      ssize_t r = ::pwrite(fd_.get(), p, count, static_cast<off_t>(offset));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return fail(from_errno(fmt::format("pwrite {} at {}", path_, offset)));
      p += r;
      count -= static_cast<size_t>(r);
      offset += static_cast<uint64_t>(r);
    }
    return {};
  }

  Status truncate(uint64_t size) override {
    if (::ftruncate(fd_.get(), static_cast<off_t>(size)) != 0) {
      return fail(from_errno("ftruncate " + path_));
    }
    return {};
  }

  Status fsync() override {
    if (::fsync(fd_.get()) != 0) return fail(from_errno("fsync " + path_));
    return {};
  }

  Result<FileStat> stat() override {
    struct stat st{};
    if (::fstat(fd_.get(), &st) != 0) return fail(from_errno("fstat " + path_));
    return to_file_stat(st);
  }

 private:
  Fd fd_;
  std::string path_;
};

// fsync of the directory makes a rename or create durable (POSIX: the entry lives there).
void sync_dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  std::string dir = slash == 0 ? "/" : path.substr(0, slash);
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd) ::fsync(fd.get());
}

class LocalTree final : public FileTree {
 public:
  blockdev::DiskUri uri_of(const std::string& path) const override {
    return blockdev::DiskUri{blockdev::FileLocation{path}};
  }

  Result<FileStat> stat(const std::string& path) override {
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) return fail(from_errno("stat " + path));
    return to_file_stat(st);
  }

  Result<std::vector<DirEntry>> list_dir(const std::string& path) override {
    DIR* dir = ::opendir(path.c_str());
    if (dir == nullptr) return fail(from_errno("opendir " + path));
    std::vector<DirEntry> out;
    while (dirent* e = ::readdir(dir)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      struct stat st{};
      if (::fstatat(::dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      out.push_back(DirEntry{name, to_file_stat(st)});
    }
    ::closedir(dir);
    return out;
  }

  Status mkdir_p(const std::string& path) override {
    std::string cur;
    size_t pos = 0;
    while (pos != std::string::npos) {
      pos = path.find('/', pos + 1);
      cur = path.substr(0, pos);
      if (cur.empty()) continue;
      if (::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) {
        return fail(from_errno("mkdir " + cur));
      }
    }
    return {};
  }

  Result<std::unique_ptr<TreeFile>> open(const std::string& path, int flags) override {
    Fd fd(::open(path.c_str(), flags | O_CLOEXEC));
    if (!fd) return fail(from_errno("open " + path));
    return std::unique_ptr<TreeFile>(std::make_unique<LocalFile>(std::move(fd), path));
  }

  Result<std::unique_ptr<TreeFile>> create_exclusive(const std::string& path,
                                                     mode_t mode) override {
    Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode));
    if (!fd) return fail(from_errno("create " + path));
    return std::unique_ptr<TreeFile>(std::make_unique<LocalFile>(std::move(fd), path));
  }

  Status rename_noreplace(const std::string& from, const std::string& to) override {
    if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) != 0) {
      return fail(from_errno(fmt::format("rename {} -> {}", from, to)));
    }
    sync_dir_of(to);
    return {};
  }

  Status rename_replace(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return fail(from_errno(fmt::format("rename {} -> {}", from, to)));
    }
    sync_dir_of(to);
    return {};
  }

  Status unlink(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return fail(from_errno("unlink " + path));
    sync_dir_of(path);
    return {};
  }

  Status chmod(const std::string& path, mode_t mode) override {
    if (::chmod(path.c_str(), mode) != 0) return fail(from_errno("chmod " + path));
    return {};
  }

  Status set_xattr(const std::string& path, const std::string& name,
                   const std::string& value) override {
    if (::setxattr(path.c_str(), name.c_str(), value.data(), value.size(), 0) != 0) {
      return fail(from_errno(fmt::format("setxattr {} {}", path, name)));
    }
    return {};
  }

  Result<std::optional<std::string>> get_xattr(const std::string& path,
                                               const std::string& name) override {
    char buf[256];
    ssize_t n = ::getxattr(path.c_str(), name.c_str(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == ENODATA) return std::optional<std::string>();
      if (errno == ERANGE) return std::optional<std::string>(std::string());
      return fail(from_errno(fmt::format("getxattr {} {}", path, name)));
    }
    return std::optional<std::string>(std::string(buf, static_cast<size_t>(n)));
  }

  Status remove_xattr(const std::string& path, const std::string& name) override {
    if (::removexattr(path.c_str(), name.c_str()) != 0 && errno != ENODATA) {
      return fail(from_errno(fmt::format("removexattr {} {}", path, name)));
    }
    return {};
  }

  Result<PoolSpace> statvfs(const std::string& path) override {
    struct statvfs st{};
    if (::statvfs(path.c_str(), &st) != 0) return fail(from_errno("statvfs " + path));
    return PoolSpace{static_cast<uint64_t>(st.f_blocks) * st.f_frsize,
                     static_cast<uint64_t>(st.f_bavail) * st.f_frsize};
  }
};

}  // namespace

std::unique_ptr<FileTree> make_local_tree() { return std::make_unique<LocalTree>(); }

}  // namespace hcnode::storage
