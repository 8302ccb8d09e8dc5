#include "blockdev/qcow2/qcow2_check.hpp"

#include <spdlog/fmt/fmt.h>

#include <algorithm>

#include "blockdev/qcow2/qcow2_backend.hpp"
#include "blockdev/qcow2/qcow2_compress.hpp"
#include "blockdev/qcow2/qcow2_format.hpp"

namespace hcnode::blockdev::qcow2 {

namespace {

constexpr size_t kMaxProblems = 20;

class Checker {
 public:
  Checker(SyncDisk& file, const Header& h) : file_(file), h_(h), c_(h.cluster_size()) {
    file_clusters_ = (file.info().size + c_ - 1) / c_;
    refs_.assign(file_clusters_, 0);
  }

  void problem(bool error, std::string what) {
    (error ? report_.errors : report_.leaks) += 1;
    if (report_.problems.size() < kMaxProblems) {
      report_.problems.push_back(std::string(error ? "ERROR " : "Leaked ") + what);
    }
  }

  // Counts one reference to the `count` clusters starting at host `offset`.
  void reference(uint64_t offset, uint64_t count, const char* what) {
    if (offset % c_ != 0) {
      problem(true, fmt::format("{} at {} not cluster-aligned", what, offset));
      return;
    }
    for (uint64_t i = 0; i < count; ++i) {
      const uint64_t idx = offset / c_ + i;
      if (idx >= file_clusters_) {
        problem(true, fmt::format("{} cluster at {} past the end of the file", what, idx * c_));
        continue;
      }
      if (idx == 0 && offset != 0) {
        problem(true, fmt::format("{} points into the header", what));
        continue;
      }
      ++refs_[idx];
    }
  }

  Result<std::vector<uint64_t>> table(uint64_t offset, uint64_t entries) {
    std::vector<uint8_t> raw((entries * 8 + 511) / 512 * 512);
    if (offset + raw.size() > file_.info().size) {
      return fail(EINVAL, fmt::format("table at {} runs past the end of the file", offset));
    }
    HCN_TRY_STATUS(file_.read(offset, raw));
    std::vector<uint64_t> out(entries);
    for (uint64_t i = 0; i < entries; ++i) out[i] = load_be64(raw.data() + 8 * i);
    return out;
  }

  Result<CheckReport> run() {
    if (h_.nb_snapshots > 0) return fail(EOPNOTSUPP, "check of images with snapshots");
    reference(0, 1, "header");
    const uint64_t l1_clusters = (uint64_t{h_.l1_size} * 8 + c_ - 1) / c_;
    if (h_.l1_size > 0) reference(h_.l1_table_offset, l1_clusters, "L1 table");
    reference(h_.refcount_table_offset, h_.refcount_table_clusters, "refcount table");
    const auto rt = HCN_TRY(table(h_.refcount_table_offset, h_.refcount_table_clusters * c_ / 8));
    for (uint64_t e : rt) {
      if (e & kOffsetMask) reference(e & kOffsetMask, 1, "refcount block");
    }
    const auto l1 = HCN_TRY(table(h_.l1_table_offset, h_.l1_size));
    std::vector<std::pair<uint64_t, bool>> copied_checks;  // (cluster offset, COPIED flag)
    for (uint64_t i = 0; i < l1.size(); ++i) {
      const uint64_t l2_off = l1[i] & kOffsetMask;
      if (l2_off == 0) continue;
      reference(l2_off, 1, "L2 table");
      copied_checks.emplace_back(l2_off, (l1[i] & kEntryCopied) != 0);
      if (l2_off % c_ != 0 || l2_off / c_ >= file_clusters_) continue;
      const auto l2 = HCN_TRY(table(l2_off, c_ / 8));
      for (uint64_t j = 0; j < l2.size(); ++j) {
        const uint64_t e = l2[j];
        if (e & kL2Compressed) {
          // Spec, "Compressed Clusters Descriptor": each host cluster the byte range touches
          // counts one reference per compressed cluster in it (as qemu-img check counts them).
          const CompressedExtent ce = compressed_extent(e, h_.cluster_bits);
          if (!ce.valid) {
            problem(true, fmt::format("compressed cluster descriptor 0x{:x} invalid", e));
            continue;
          }
          ++report_.data_clusters;
          const uint64_t first = ce.offset / c_;
          const uint64_t last = (ce.offset + ce.length - 1) / c_;
          reference(first * c_, last - first + 1, "compressed data");
          continue;
        }
        const uint64_t host = e & kOffsetMask;
        if (host == 0) continue;
        ++report_.data_clusters;
        reference(host, 1, "data");
        copied_checks.emplace_back(host, (e & kEntryCopied) != 0);
      }
    }
    // On-disk refcounts against the references counted above.
    const uint64_t per_block = c_ * 8 / h_.refcount_bits();
    std::vector<uint8_t> block(c_);
    std::vector<uint64_t> stored(file_clusters_, 0);
    for (uint64_t bi = 0; bi < rt.size(); ++bi) {
      const uint64_t off = rt[bi] & kOffsetMask;
      if (off == 0 || off % c_ != 0 || off + c_ > file_.info().size) continue;
      HCN_TRY_STATUS(file_.read(off, block));
      for (uint64_t k = 0; k < per_block; ++k) {
        const uint64_t idx = bi * per_block + k;
        const uint64_t count = refcount_at(block, k);
        if (idx < file_clusters_) {
          stored[idx] = count;
        } else if (count != 0) {
          // Counted but past the end of the file, so unreferenced (references there are
          // errors above): what a crash after the refcount update and before the data leaves.
          problem(false, fmt::format("cluster {} past the end of the file: refcount {}, no "
                                     "reference", idx, count));
        }
      }
    }
    for (uint64_t idx = 0; idx < file_clusters_; ++idx) {
      if (refs_[idx] > 0) ++report_.referenced_clusters;
      if (stored[idx] == refs_[idx]) continue;
      if (refs_[idx] == 0) {
        problem(false, fmt::format("cluster {}: refcount {}, no reference", idx, stored[idx]));
      } else if (stored[idx] < refs_[idx]) {
        problem(true, fmt::format("cluster {}: refcount {} < {} references", idx, stored[idx],
                                  refs_[idx]));
      } else {
        problem(false, fmt::format("cluster {}: refcount {} > {} references", idx, stored[idx],
                                   refs_[idx]));
      }
    }
    for (const auto& [off, copied] : copied_checks) {
      const uint64_t idx = off / c_;
      if (idx >= file_clusters_) continue;
      if (copied != (stored[idx] == 1)) {
        problem(true, fmt::format("COPIED flag of cluster at {} is {} with refcount {}", off,
                                  copied ? "set" : "clear", stored[idx]));
      }
    }
    return report_;
  }

 private:
  uint64_t refcount_at(const std::vector<uint8_t>& block, uint64_t k) const {
    const uint32_t bits = static_cast<uint32_t>(h_.refcount_bits());
    if (bits >= 8) {
      const uint64_t bytes = bits / 8;
      uint64_t v = 0;
      for (uint64_t b = 0; b < bytes; ++b) v = (v << 8) | block[k * bytes + b];
      return v;
    }
    const uint64_t bit = k * bits;
    // Sub-byte refcounts: the spec orders them from the least significant bit of each byte.
    return (block[bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
  }

  SyncDisk& file_;
  const Header& h_;
  const uint64_t c_;
  uint64_t file_clusters_ = 0;
  std::vector<uint32_t> refs_;
  CheckReport report_;
};

}  // namespace

Result<CheckReport> check_image(SyncDisk& file) {
  const Header h = HCN_TRY(read_header(file));
  return Checker(file, h).run();
}

}  // namespace hcnode::blockdev::qcow2
