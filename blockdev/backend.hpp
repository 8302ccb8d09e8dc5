// Backend: the asynchronous byte store behind a virtual disk (an RBD image, a file on a Gluster
// volume, a local file). The virtio-blk device (compute/devices/virtio_blk) turns guest requests
// into IoRequests; a backend turns them into librbd / gfapi / io_uring calls.
//
//   Backend (one per disk, shared)        BackendQueue (one per virtqueue worker)
//   ------------------------------        ---------------------------------------
//   info(): size, read-only, topology      submit(IoRequest)  never blocks
//   open_queue()                           event_fd()         readable when completions wait
//   describe()                             reap(out)          completions, any order
//                                          drain()            blocks until nothing in flight
//
// Contract of every backend (the non-negotiables of a disk):
//   - A write completes with 0 only after the storage acknowledged it (librbd's completion,
//     gfapi's callback, the CQE of io_uring): never earlier.
//   - A flush completes with 0 only when every write that COMPLETED before the flush was
//     SUBMITTED is durable (virtio 1.2 5.2.6.2: VIRTIO_BLK_T_FLUSH; the guest waits for a write's
//     completion before it relies on a flush covering it). Writes still in flight when the flush
//     is submitted may or may not be covered.
//   - Requests in flight at the same time may complete in any order, as on real disks.
//   - result is 0 or a negative errno (-EIO, -ENOSPC, -EROFS, ...), never a partial length: a
//     short read or write is turned into -EIO by the backend (and logged with image and offset).
//   - A read-only backend refuses write, discard and write-zeroes at submit() with EROFS.
//   - Requests must lie inside [0, info().size); the caller (the device) checks that, the
//     backend checks it again and refuses with EINVAL.
//
// Memory: the iovecs point into guest RAM (host views from GuestMemory::slice) and must stay
// valid until the request's completion is reaped. The IoRequest itself (and its iovec array) is
// copied by submit() where the backend needs it later, so the caller may reuse it at once.
//
// Threads: a Backend is thread-safe. A BackendQueue belongs to ONE thread (its worker): submit,
// reap, drain and in_flight are called only there. Library callbacks (librbd's finisher thread,
// gfapi's event threads) only push onto the queue's completion list and signal its eventfd.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/result.hpp"

namespace hcnode::blockdev {

enum class IoKind : uint8_t {
  kRead,
  kWrite,
  kFlush,        // offset/length/iov ignored
  kDiscard,      // iov ignored; may leave the range unchanged or zeroed (see info)
  kWriteZeroes,  // iov ignored; the range reads back as zeroes afterwards
};
const char* to_string(IoKind kind);

struct IoRequest {
  IoKind kind = IoKind::kRead;
  uint64_t offset = 0;           // bytes from the start of the disk
  uint64_t length = 0;           // bytes; for read/write the sum of iov lengths
  std::span<const iovec> iov;    // read/write only
  uint64_t cookie = 0;           // the caller's tag, returned in the Completion
  // kWriteZeroes: the backend may deallocate the range (VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP).
  bool may_unmap = false;
};

struct Completion {
  uint64_t cookie = 0;
  int32_t result = 0;  // 0 or -errno
};

// What the disk looks like to the guest (virtio-blk config, 5.2.4) and what it can do.
struct BackendInfo {
  uint64_t size = 0;                   // bytes, a multiple of logical_block_size (not for a container)
  bool read_only = false;
  uint32_t logical_block_size = 512;   // the guest's sector size
  uint32_t physical_block_size = 4096; // topology hint
  uint32_t optimal_io_size = 0;        // bytes; 0 = no hint (RBD: the object size)
  uint32_t discard_granularity = 0;    // bytes; 0 = discard not supported
  bool write_zeroes = false;           // kWriteZeroes supported
  bool discard_zeroes = false;         // a discarded range reads back as zeroes
  uint32_t max_segments = 1024;        // iovecs per request (IOV_MAX)
  uint32_t max_queues = 0;             // queues open at once; 0 = any number (qcow2: 1)
  // Writes past `size` extend the file (BackendOptions::growable; format layers only).
  bool growable = false;
  // An image container (BackendOptions::container): any size, and reads may reach past `size`
  // (past the end of the file they return zeroes).
  bool container = false;
  std::string kind;                    // "rbd", "gluster", "file", "qcow2", "memory"
};

class BackendQueue {
 public:
  virtual ~BackendQueue() = default;

  // Starts the request. Success means exactly one Completion with req.cookie will be reaped
  // later. An error means nothing was started and no completion follows: EROFS (read-only),
  // EINVAL (outside the disk, bad iovecs), EAGAIN (too many in flight: reap, then retry),
  // or the library's own refusal.
  virtual Status submit(const IoRequest& req) = 0;

  // Submissions may be held back until unplug(): a worker that pops several requests from the
  // guest submits them all, then unplugs once (io_uring: one io_uring_enter for the batch).
  // The caller MUST unplug after its submit()s; drain() unplugs too. Default: nothing held.
  virtual void unplug() {}

  // Readable (EPOLLIN) while completions wait to be reaped; reap() clears it.
  virtual int event_fd() const = 0;

  // Appends every completion available now to `out`; returns how many. Non-blocking.
  virtual size_t reap(std::vector<Completion>& out) = 0;

  // Blocks until every submitted request has completed (their completions stay reapable).
  // Pause, reset and migration use it.
  virtual void drain() = 0;

  // Submitted and not yet completed (completed-but-unreaped requests do not count).
  virtual size_t in_flight() const = 0;

  // Requests this queue can have in flight at once (submit refuses with EAGAIN beyond it).
  virtual size_t depth() const = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual const BackendInfo& info() const = 0;

  // A queue for one worker thread. Every queue of a backend reaches the same bytes.
  virtual Result<std::unique_ptr<BackendQueue>> open_queue(size_t depth) = 0;

  // Canonical URI and backend-specific facts for `describe` (JSON text, e.g. RBD features).
  virtual std::string uri() const = 0;
};

}  // namespace hcnode::blockdev
