// The qcow2 format layer: a Backend that maps a virtual disk onto the clusters of a qcow2 v3
// image stored in another (byte) Backend — a file, a Gluster file, an RBD image — and reads
// unallocated clusters from its backing image (raw or qcow2, any backend).
//
// Metadata (qcow2 spec, "Cluster mapping" and "Host cluster management"):
//   - The L1 table and the refcount table stay in memory (small); L2 tables are read on demand
//     into a bounded cache; refcount blocks are read when an allocation needs one.
//   - New clusters (data, L2 tables, refcount blocks) are appended after the end of the file;
//     clusters are never freed: discard and write-zeroes of whole clusters set the zero flag
//     (keeping the cluster allocated, "preallocated zero") and punch the host range, so the
//     refcounts never go down and no table write can leave a cluster referenced but free.
//   - Metadata updates are written back in rounds (a guest flush, cache pressure, close), in
//     the order that keeps the image consistent if the host dies at any point:
//       A. new and changed refcount blocks, new L2 tables; flush (this also makes every data
//          write that completed before the round durable)
//       B. changed refcount table entries; flush
//       C. changed L2 tables and L1 entries; flush
//     A crash can then leave only leaked clusters (refcount 1, unreferenced), never a
//     reference to a cluster that is free or holds no data yet. An L2 entry is updated in
//     memory only after its cluster's data write completed, and a round writes a snapshot of
//     the tables taken when it starts.
//   - Concurrent writes to one unallocated cluster allocate it once: the second waits for the
//     first and then writes in place.
//
// Refused at open, with the reason (qcow2_format.hpp lists header-level refusals): read-write
// opens of images with internal snapshots, with the dirty bit (lazy refcounts), with a refcount
// width other than 16 bits; qcow2 on RBD read-write (an RBD image does not grow).
//
// Compressed clusters (deflate or zstd, qcow2_compress.hpp) are read: the descriptor's byte
// range is read (an aligned superset, clamped to the file's end), decompressed into a cluster
// and the queue keeps the last decompressed cluster (sequential reads decompress each cluster
// once). A bad descriptor or corrupt data fails that read with EIO; it does not mark the image
// corrupt. hcnode never writes compressed data: a write to a compressed cluster allocates a
// normal cluster and writes it whole (the decompressed cluster merged with the guest's bytes),
// and only then the L2 entry points at it, as for any copy-on-write. Discard and write-zeroes
// of a compressed cluster set the zero flag (no host offset: the compressed bytes may share
// their sectors with other clusters, so nothing is punched). The compressed cluster's host
// clusters keep their refcounts (leaked, as everything this layer stops using).
//
// One queue at a time (BackendInfo::max_queues = 1): the metadata is owned by the queue's
// worker thread while the queue exists, without locks. A second open_queue fails with EBUSY.
#pragma once

#include <memory>
#include <string>

#include "base/result.hpp"
#include "blockdev/backend.hpp"
#include "blockdev/disk_uri.hpp"
#include "blockdev/open_backend.hpp"
#include "blockdev/qcow2/qcow2_format.hpp"
#include "blockdev/sync_disk.hpp"

namespace hcnode::blockdev::qcow2 {

struct ImageState;  // qcow2_image.hpp

struct Qcow2Options {
  bool read_only = false;
  // L2 tables kept in memory (each maps cluster_size^2/8 bytes: 512 MiB at 64 KiB clusters).
  size_t l2_cache_tables = 32;
};

class Qcow2Backend final : public Backend {
 public:
  // Opens the image stored in `file` (opened growable unless read-only); `backing` is the
  // opened backing image or null. Use open_qcow2() to resolve the backing chain.
  static Result<std::shared_ptr<Qcow2Backend>> open(std::shared_ptr<Backend> file,
                                                    std::shared_ptr<Backend> backing,
                                                    const Qcow2Options& options);
  ~Qcow2Backend() override;

  const BackendInfo& info() const override { return info_; }
  Result<std::unique_ptr<BackendQueue>> open_queue(size_t depth) override;
  std::string uri() const override;

  const Header& header() const;

 private:
  Qcow2Backend() = default;
  BackendInfo info_;
  std::shared_ptr<ImageState> state_;
};

// Reads and parses the header from the first cluster of `disk` (qcow2_backend.cpp).
Result<Header> read_header(SyncDisk& disk);

// (qcow2_chain.cpp) Reads the header of the image at `uri` and opens it with its backing chain (at most 16
// deep). A relative backing file name is resolved against the image's own location (same
// volume / directory / pool), as QEMU does; the backing format comes from the header's
// extension, else from the backing file's magic.
Result<std::shared_ptr<Backend>> open_qcow2(const DiskUri& uri, const BackendOptions& options,
                                            StorageSessions& sessions, int depth = 0);

// Where a backing file name stored in the image at `image` points.
Result<DiskUri> resolve_backing(const DiskUri& image, const std::string& backing_file);

}  // namespace hcnode::blockdev::qcow2
