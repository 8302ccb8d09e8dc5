// Chunked, sparse-aware copies for import, export and flatten: disk to disk, disk to a local fd,
// and a raw byte stream (stdin) to a disk. Internal to storage/.
//
// Why not blockdev::copy_disk: the storage service needs cancellation (ProgressFn returning
// false, e.g. on Ctrl-C) and (done, total) progress; the shape of the loop is the same — a
// window of chunks is read with several requests in flight, then the non-zero ones are written.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <span>

#include "base/result.hpp"
#include "blockdev/sync_disk.hpp"
#include "storage/image_service.hpp"

namespace hcnode::storage {

inline constexpr uint64_t kCopyChunk = 4 << 20;  // one RBD object; a gluster shard is 64 MiB
inline constexpr size_t kCopyWindow = 8;         // chunks read (then written) per round

// Page-aligned heap memory (O_DIRECT-safe), owned.
class AlignedBuffer {
 public:
  explicit AlignedBuffer(size_t size);
  uint8_t* data() { return ptr_.get(); }
  size_t size() const { return size_; }
  std::span<uint8_t> span() { return {ptr_.get(), size_}; }

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> ptr_;
  size_t size_;
};

bool is_all_zero(std::span<const uint8_t> bytes);

// Calls progress (if any); ECANCELED when it asks to stop.
Status report_progress(const ProgressFn& progress, uint64_t done, uint64_t total);

// [0, length) of `from` into `to`, which must read zeroes everywhere (a fresh image): all-zero
// chunks are skipped. Flushes `to` at the end.
Status copy_disk_to_disk(blockdev::SyncDisk& from, blockdev::SyncDisk& to, uint64_t length,
                         const ProgressFn& progress);

// [0, length) of `from` into fd. seekable: pwrite at offsets, skipping zero chunks when sparse,
// then ftruncate to length and fsync; otherwise write() every byte in order (pipes, stdout).
Status copy_disk_to_fd(blockdev::SyncDisk& from, int fd, uint64_t length, bool seekable,
                       bool sparse, const ProgressFn& progress);

// Reads up to buf.size() bytes from fd, retrying short reads and EINTR; returns how many were
// read (less than buf.size() only at EOF).
Result<size_t> read_full(int fd, std::span<uint8_t> buf);

}  // namespace hcnode::storage
