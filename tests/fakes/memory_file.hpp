// MemoryFile: a growable in-memory byte Backend that can "lose power" (unit tests of format
// layers only). Every write lands in the visible bytes at once, as in a page cache, and is
// remembered until the next flush; crash_at(k) makes request number k and every later one fail
// with EIO, as if the host died just before it. crash_image() then builds what storage would
// hold after such a crash: the bytes as of the last completed flush, plus a chosen subset of
// the writes made since (each write whole or not at all).
//
// Like a real filesystem it has a maximum file size (kMaxSize): writes past it fail with EFBIG,
// so a hostile image whose tables point terabytes away cannot make the test allocate them.
//
// Thread-safety: one test thread; completions go through a CompletionList like real queues.
#pragma once

#include <algorithm>
#include <cstring>
#include <functional>
#include <vector>

#include "blockdev/backend.hpp"
#include "blockdev/completion_list.hpp"

namespace hcnode::testing {

class MemoryFile final : public blockdev::Backend,
                         public std::enable_shared_from_this<MemoryFile> {
 public:
  static constexpr uint64_t kMaxSize = 64ULL << 20;

  explicit MemoryFile(std::vector<uint8_t> bytes = {}, bool read_only = false)
      : bytes_(std::move(bytes)), durable_(bytes_) {
    info_.kind = "memory";
    info_.read_only = read_only;
    info_.growable = !read_only;
    info_.container = true;  // the byte store of a format layer: reads past the end are zeroes
    info_.size = bytes_.size();
    info_.discard_granularity = 512;
    info_.write_zeroes = true;
  }

  const blockdev::BackendInfo& info() const override { return info_; }
  std::string uri() const override { return "memory:"; }
  Result<std::unique_ptr<blockdev::BackendQueue>> open_queue(size_t depth) override;

  const std::vector<uint8_t>& bytes() const { return bytes_; }
  uint64_t requests() const { return requests_; }
  size_t unflushed_writes() const { return unflushed_.size(); }
  // Request number k (counting from 0 across all queues) and every later one fail with EIO.
  void crash_at(uint64_t k) { crash_at_ = k; }
  bool crashed() const { return requests_ > crash_at_; }
  // The bytes after the crash: durable state plus the unflushed writes keep(i) selects.
  std::vector<uint8_t> crash_image(const std::function<bool(size_t)>& keep) const {
    std::vector<uint8_t> out = durable_;
    for (size_t i = 0; i < unflushed_.size(); ++i) {
      if (keep(i)) apply(out, unflushed_[i].offset, unflushed_[i].data);
    }
    return out;
  }

  int execute(const blockdev::IoRequest& req) {
    if (requests_++ >= crash_at_) return -EIO;
    const uint64_t end = req.offset + req.length;
    if (end < req.offset) return -EINVAL;
    if (req.kind != blockdev::IoKind::kRead && req.kind != blockdev::IoKind::kFlush &&
        end > kMaxSize) {
      return -EFBIG;
    }
    switch (req.kind) {
      case blockdev::IoKind::kRead: {
        // Past the end of the file: zeroes, as the file and gluster backends read a container.
        uint64_t at = req.offset;
        for (const iovec& v : req.iov) {
          const uint64_t have =
              at < bytes_.size() ? std::min<uint64_t>(v.iov_len, bytes_.size() - at) : 0;
          if (have > 0) std::memcpy(v.iov_base, bytes_.data() + at, have);
          std::memset(static_cast<char*>(v.iov_base) + have, 0, v.iov_len - have);
          at += v.iov_len;
        }
        return 0;
      }
      case blockdev::IoKind::kWrite: {
        std::vector<uint8_t> data;
        for (const iovec& v : req.iov) {
          const auto* p = static_cast<const uint8_t*>(v.iov_base);
          data.insert(data.end(), p, p + v.iov_len);
        }
        apply(bytes_, req.offset, data);
        unflushed_.push_back({req.offset, std::move(data)});
        return 0;
      }
      case blockdev::IoKind::kDiscard:
      case blockdev::IoKind::kWriteZeroes: {
        std::vector<uint8_t> zeroes(req.length, 0);
        apply(bytes_, req.offset, zeroes);
        unflushed_.push_back({req.offset, std::move(zeroes)});
        return 0;
      }
      case blockdev::IoKind::kFlush:
        durable_ = bytes_;
        unflushed_.clear();
        return 0;
    }
    return -EINVAL;
  }

 private:
  struct Write {
    uint64_t offset;
    std::vector<uint8_t> data;
  };
  static void apply(std::vector<uint8_t>& to, uint64_t offset, const std::vector<uint8_t>& data) {
    if (offset + data.size() > to.size()) to.resize(offset + data.size(), 0);
    std::copy(data.begin(), data.end(), to.begin() + static_cast<ptrdiff_t>(offset));
  }

  blockdev::BackendInfo info_;
  std::vector<uint8_t> bytes_;
  std::vector<uint8_t> durable_;
  std::vector<Write> unflushed_;
  uint64_t requests_ = 0;
  uint64_t crash_at_ = UINT64_MAX;
};

class MemoryFileQueue final : public blockdev::BackendQueue {
 public:
  MemoryFileQueue(std::shared_ptr<MemoryFile> file, std::unique_ptr<blockdev::CompletionList> list,
                  size_t depth)
      : file_(std::move(file)), list_(std::move(list)), depth_(depth) {}
  ~MemoryFileQueue() override { drain(); }

  Status submit(const blockdev::IoRequest& req) override {
    if (file_->info().read_only && req.kind != blockdev::IoKind::kRead &&
        req.kind != blockdev::IoKind::kFlush) {
      return fail(EROFS, "memory file: read-only");
    }
    if (list_->in_flight() >= depth_) return fail(EAGAIN, "memory file: queue full");
    list_->started();
    list_->push({req.cookie, file_->execute(req)});
    return {};
  }
  int event_fd() const override { return list_->fd(); }
  size_t reap(std::vector<blockdev::Completion>& out) override { return list_->reap(out); }
  void drain() override { list_->wait_idle(); }
  size_t in_flight() const override { return list_->in_flight(); }
  size_t depth() const override { return depth_; }

 private:
  std::shared_ptr<MemoryFile> file_;
  std::unique_ptr<blockdev::CompletionList> list_;
  size_t depth_;
};

inline Result<std::unique_ptr<blockdev::BackendQueue>> MemoryFile::open_queue(size_t depth) {
  auto list = HCN_TRY(blockdev::CompletionList::create());
  return std::unique_ptr<blockdev::BackendQueue>(
      new MemoryFileQueue(shared_from_this(), std::move(list), depth));
}

}  // namespace hcnode::testing
