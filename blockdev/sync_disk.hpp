// SyncDisk: blocking reads and writes over any Backend, for the control plane (the storage
// service's import/export/flatten, qcow2 image creation and checks, tests). It owns one
// BackendQueue and waits on its eventfd; the data path never uses it.
//
// Thread: one caller thread at a time (it owns the queue).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>

#include "base/result.hpp"
#include "blockdev/backend.hpp"

namespace hcnode::blockdev {

class SyncDisk {
 public:
  static Result<SyncDisk> open(std::shared_ptr<Backend> backend, size_t depth = 32);

  SyncDisk(SyncDisk&&) noexcept = default;
  SyncDisk& operator=(SyncDisk&&) noexcept = default;
  ~SyncDisk();

  const BackendInfo& info() const { return backend_->info(); }
  Backend& backend() { return *backend_; }

  Status read(uint64_t offset, std::span<uint8_t> buf);
  Status write(uint64_t offset, std::span<const uint8_t> buf);
  Status flush();
  Status write_zeroes(uint64_t offset, uint64_t length, bool may_unmap);
  Status discard(uint64_t offset, uint64_t length);

  // Runs every request (cookies are assigned here) with up to depth() in flight; returns the
  // first failure after all of them finished.
  Status run_all(std::span<IoRequest> requests);

 private:
  SyncDisk(std::shared_ptr<Backend> backend, std::unique_ptr<BackendQueue> queue)
      : backend_(std::move(backend)), queue_(std::move(queue)) {}
  Status run_one(IoRequest req);
  Status wait(size_t n, std::vector<Completion>& out);

  std::shared_ptr<Backend> backend_;
  std::unique_ptr<BackendQueue> queue_;
};

// Copies [0, length) from `from` to `to` in chunks of `chunk` bytes with `depth` chunks in
// flight. With skip_zeroes, all-zero chunks are not written (the destination must read zeroes
// there already: a fresh image). progress(done_bytes) is called after each chunk.
struct CopyOptions {
  uint64_t chunk = 4 << 20;
  size_t depth = 8;
  bool skip_zeroes = true;
  std::function<void(uint64_t done)> progress;
};
Status copy_disk(SyncDisk& from, SyncDisk& to, uint64_t length, const CopyOptions& options);

}  // namespace hcnode::blockdev
