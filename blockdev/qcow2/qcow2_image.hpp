// The in-memory metadata of an open qcow2 image, shared by the Qcow2Backend and the one queue
// that may exist at a time (qcow2_backend.hpp). While a queue exists, only its worker thread
// touches this; open/close happen on the control thread with no queue.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "blockdev/backend.hpp"
#include "blockdev/qcow2/qcow2_format.hpp"
#include "blockdev/qcow2/task.hpp"

namespace hcnode::blockdev::qcow2 {

enum class LoadState { kLoading, kReady, kFailed };

// Modification tracking for a table written back in rounds: dirty while gen > written_gen;
// a round records gen when it snapshots the table and marks that much written on success.
struct Dirty {
  uint64_t gen = 0;
  uint64_t written_gen = 0;
  bool dirty() const { return gen > written_gen; }
};

struct L2Table {
  std::vector<uint64_t> entries;  // host byte order
  LoadState state = LoadState::kLoading;
  int error = 0;
  WaitList waiters;  // coroutines waiting for the load
  Dirty dirty;
  bool fresh = false;  // allocated here and never written: phase A writes it whole
  int pins = 0;        // requests holding a pointer across a suspension
  uint64_t last_use = 0;
};

struct RefBlock {
  std::vector<uint16_t> counts;  // 16-bit refcounts (refcount_order 4)
  uint64_t host_offset = 0;
  LoadState state = LoadState::kLoading;
  int error = 0;
  WaitList waiters;
  Dirty dirty;
};

// A table kept whole in memory (L1, refcount table) whose 512-byte blocks are written back
// individually.
struct BlockTable {
  std::vector<uint64_t> entries;
  uint64_t disk_offset = 0;
  std::vector<Dirty> blocks;  // one per 64 entries
  void set(uint64_t i, uint64_t v, uint64_t gen) {
    entries[i] = v;
    blocks[i / 64].gen = gen;
  }
};

struct ImageState {
  Header header;
  uint32_t cluster_bits = 16;
  uint64_t cluster_size = 0;
  std::shared_ptr<Backend> file;
  uint64_t file_size = 0;  // at open: compressed data lies below it (hcnode never writes any)
  std::shared_ptr<Backend> backing;  // null: unallocated clusters read as zeroes
  uint64_t backing_size = 0;
  bool read_only = true;
  size_t l2_limit = 32;
  std::string name;  // for logs: the file's URI

  BlockTable l1;
  BlockTable refcount_table;
  std::map<uint64_t, L2Table> l2;            // by the table's host offset
  std::map<uint64_t, RefBlock> refblocks;    // by refcount block index
  uint64_t next_free = 0;                    // host offset of the next cluster to allocate
  uint64_t gen_counter = 0;
  uint64_t use_counter = 0;
  bool queue_open = false;
  // Set when metadata turned out corrupt: writes fail with EIO from then on.
  bool corrupt = false;

  uint64_t next_gen() { return ++gen_counter; }
  uint64_t l2_entries() const { return cluster_size / 8; }
  uint64_t refblock_entries() const { return cluster_size / 2; }
};

}  // namespace hcnode::blockdev::qcow2
