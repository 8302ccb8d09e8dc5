// FileBackend: a disk in a local file or block device, driven by io_uring (liburing 2.3).
//
//   file:/var/lib/hcnode/disk.raw     regular file: size from fstat, discard = punch hole
//   file:/dev/sdb                     block device: size from BLKGETSIZE64, no discard
//
// One io_uring per BackendQueue (entries = queue depth); the ring's completion eventfd
// (io_uring_register_eventfd) is the queue's event_fd(), and reap() walks the CQ ring.
//
// CachePolicy::kNone opens the file a second time with O_DIRECT. Guest buffers are not always
// aligned the way O_DIRECT needs (statx STATX_DIOALIGN, kernel >= 6.1), so a request whose
// offset, iovec bases or iovec lengths are not aligned goes to the buffered descriptor instead;
// both descriptors reach the same inode, and the kernel keeps them coherent (an O_DIRECT read
// writes back dirty page-cache pages of its range first, an O_DIRECT write invalidates them).
// A file system that refuses O_DIRECT (EINVAL at open) leaves the disk buffered, with a warning.
//
// As the byte store of a qcow2 image (BackendOptions::container) a regular file may have any
// size. A read across its end (an aligned O_DIRECT read of the last, partial sector) gets the
// bytes up to the end, then resumes on the buffered descriptor, reads nothing, and the rest
// is zeroes. Writes past the end keep their alignment and extend the file as usual.
#pragma once

#include <memory>
#include <string>

#include "base/fd.hpp"
#include "base/result.hpp"
#include "blockdev/backend.hpp"
#include "blockdev/disk_uri.hpp"

namespace hcnode::blockdev {

struct BackendOptions;

class FileBackend final : public Backend, public std::enable_shared_from_this<FileBackend> {
 public:
  static Result<std::shared_ptr<FileBackend>> open(const FileLocation& where,
                                                   const BackendOptions& options);

  const BackendInfo& info() const override { return info_; }
  Result<std::unique_ptr<BackendQueue>> open_queue(size_t depth) override;
  std::string uri() const override { return uri_; }

  // True when aligned requests bypass the page cache (kNone and the file system allowed it).
  bool uses_direct_io() const { return direct_.valid(); }

  // What the queues need (file_backend.cpp).
  struct Layout {
    uint32_t dio_mem_align = 512;     // iovec base alignment for O_DIRECT
    uint32_t dio_offset_align = 512;  // offset and iovec length alignment for O_DIRECT
    bool zero_range = false;          // FALLOC_FL_ZERO_RANGE works (else punch hole)
  };
  int buffered_fd() const { return buffered_.get(); }
  int direct_fd() const { return direct_.get(); }
  const Layout& layout() const { return layout_; }

 private:
  FileBackend() = default;

  Fd buffered_;
  Fd direct_;  // invalid unless kNone and O_DIRECT worked
  Layout layout_;
  BackendInfo info_;
  std::string uri_;
};

}  // namespace hcnode::blockdev
