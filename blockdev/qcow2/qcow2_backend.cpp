#include "blockdev/qcow2/qcow2_backend.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "blockdev/qcow2/qcow2_image.hpp"
#include "blockdev/qcow2/qcow2_queue.hpp"
#include "blockdev/sync_disk.hpp"

namespace hcnode::blockdev::qcow2 {

namespace {

Result<std::vector<uint8_t>> read_bytes(SyncDisk& disk, uint64_t offset, uint64_t length) {
  std::vector<uint8_t> buf(length);
  if (length > 0) HCN_TRY_STATUS(disk.read(offset, buf));
  return buf;
}

}  // namespace

Result<Header> read_header(SyncDisk& disk) {
  const uint64_t size = disk.info().size;
  auto head = HCN_TRY(read_bytes(disk, 0, std::min<uint64_t>(size, 512)));
  const uint64_t needed = HCN_TRY(header_bytes_needed(head));
  auto all = HCN_TRY(read_bytes(disk, 0, std::min<uint64_t>(size, needed)));
  return parse_header(all);
}

namespace {

Result<BlockTable> read_block_table(SyncDisk& disk, uint64_t offset, uint64_t entries,
                                    const char* what) {
  BlockTable t;
  t.disk_offset = offset;
  // The table itself must be in the file; the rest of its last sector may lie past the end
  // (qemu-img writes only the table's bytes: a fresh overlay ends 8 bytes into its L1 table's
  // cluster), and reads there return zeroes (the file is opened as a container).
  const uint64_t bytes = (entries * 8 + 511) / 512 * 512;
  if (offset + entries * 8 > disk.info().size) {
    return fail(EINVAL, fmt::format("qcow2: {} at {} runs past the end of the file", what, offset));
  }
  auto raw = HCN_TRY(read_bytes(disk, offset, bytes));
  t.entries.resize(bytes / 8);
  for (size_t i = 0; i < t.entries.size(); ++i) t.entries[i] = load_be64(raw.data() + i * 8);
  t.entries.resize(entries);
  t.blocks.resize((entries + 63) / 64);
  return t;
}

}  // namespace

Result<std::shared_ptr<Qcow2Backend>> Qcow2Backend::open(std::shared_ptr<Backend> file,
                                                          std::shared_ptr<Backend> backing,
                                                          const Qcow2Options& options) {
  auto disk = HCN_TRY(SyncDisk::open(file, 4));
  const std::string name = file->uri();
  auto header = with_context(read_header(disk), name);
  if (!header) return fail(header.error());
  const Header& h = *header;
  const bool rw = !options.read_only;
  auto refuse_rw = [&](const std::string& why) {
    return fail(EROFS, fmt::format("{}: cannot open read-write: {}", name, why));
  };
  if (rw && h.nb_snapshots > 0) return refuse_rw("the image has internal snapshots");
  if (rw && (h.incompatible_features & kIncompatDirty)) {
    return refuse_rw("the dirty bit is set (lazy refcounts): repair with 'qemu-img check -r all'");
  }
  if (rw && h.refcount_order != 4) {
    return refuse_rw(fmt::format("{}-bit refcounts (hcnode writes 16-bit)", h.refcount_bits()));
  }
  if (rw && !file->info().growable) return refuse_rw(fmt::format("{} cannot grow", file->info().kind));
  if (!h.backing_file.empty() && !backing) {
    return fail(EINVAL, fmt::format("{}: backing file '{}' not opened", name, h.backing_file));
  }

  auto state = std::make_shared<ImageState>();
  state->header = h;
  state->cluster_bits = h.cluster_bits;
  state->cluster_size = h.cluster_size();
  state->file = file;
  state->file_size = file->info().size;
  state->backing = backing;
  state->backing_size = backing ? backing->info().size : 0;
  state->read_only = !rw;
  state->l2_limit = std::max<size_t>(options.l2_cache_tables, 2);
  state->name = name;
  state->l1 = HCN_TRY(with_context(read_block_table(disk, h.l1_table_offset, h.l1_size, "L1 table"), name));
  state->refcount_table = HCN_TRY(with_context(
      read_block_table(disk, h.refcount_table_offset,
                       uint64_t{h.refcount_table_clusters} * h.cluster_size() / 8, "refcount table"),
      name));

  if (rw) {
    // Appending allocator: start after the file's end and after every cluster any refcount
    // block counts (an image written elsewhere may hold allocated clusters past its end).
    const uint64_t c = h.cluster_size();
    uint64_t end = (file->info().size + c - 1) / c * c;
    const uint64_t per_block = state->refblock_entries();
    std::vector<uint8_t> block(c);
    for (uint64_t bi = 0; bi < state->refcount_table.entries.size(); ++bi) {
      const uint64_t off = state->refcount_table.entries[bi] & kOffsetMask;
      if (off == 0) continue;
      if (off % c != 0 || off + c > file->info().size) {
        return fail(EINVAL, fmt::format("{}: qcow2: refcount block {} at {} is invalid (corrupt "
                                        "image: check with 'qemu-img check')", name, bi, off));
      }
      HCN_TRY_STATUS(disk.read(off, block));
      end = std::max(end, off + c);
      for (uint64_t i = per_block; i-- > 0;) {
        if (load_be16(block.data() + 2 * i) != 0) {
          end = std::max(end, (bi * per_block + i + 1) * c);
          break;
        }
      }
    }
    state->next_free = end;
    if (h.autoclear_features != 0) {
      // Spec: a writer that does not maintain an autoclear feature (bitmaps) clears its bit.
      uint8_t zero[8] = {};
      HCN_TRY_STATUS(disk.write(88, zero));
      HCN_TRY_STATUS(disk.flush());
      state->header.autoclear_features = 0;
    }
  }

  auto backend = std::shared_ptr<Qcow2Backend>(new Qcow2Backend());
  BackendInfo& info = backend->info_;
  info.kind = "qcow2";
  info.size = h.size;
  info.read_only = !rw;
  info.logical_block_size = 512;
  info.physical_block_size = 4096;
  info.optimal_io_size = static_cast<uint32_t>(h.cluster_size());
  info.discard_granularity = static_cast<uint32_t>(h.cluster_size());
  info.write_zeroes = true;
  info.discard_zeroes = false;  // partial clusters are left as they are
  info.max_segments = 1024;
  info.max_queues = 1;
  backend->state_ = std::move(state);
  spdlog::info("{}: qcow2 v3, {} bytes, {}-byte clusters{}{}", name, h.size, h.cluster_size(),
               h.backing_file.empty() ? "" : ", backing " + h.backing_file,
               rw ? "" : ", read-only");
  return backend;
}

Qcow2Backend::~Qcow2Backend() = default;

const Header& Qcow2Backend::header() const { return state_->header; }

std::string Qcow2Backend::uri() const { return state_->name; }

Result<std::unique_ptr<BackendQueue>> Qcow2Backend::open_queue(size_t depth) {
  if (state_->queue_open) {
    return fail(EBUSY, state_->name + ": a qcow2 image has one queue at a time");
  }
  return make_qcow2_queue(state_, info_, depth);
}

}  // namespace hcnode::blockdev::qcow2
