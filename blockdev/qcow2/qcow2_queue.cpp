#include "blockdev/qcow2/qcow2_queue.hpp"

#include <poll.h>
#include <sys/epoll.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "base/event_fd.hpp"
#include "base/fd.hpp"
#include "blockdev/backend_support.hpp"
#include "blockdev/qcow2/iov_util.hpp"
#include "blockdev/qcow2/qcow2_compress.hpp"
#include "blockdev/qcow2/qcow2_image.hpp"
#include "blockdev/qcow2/task.hpp"

namespace hcnode::blockdev::qcow2 {

namespace {

class Qcow2Queue;

// One I/O on an inner queue (the image file or the backing image), awaited by a coroutine.
// The awaiter lives in the suspended coroutine's frame; its address is the inner cookie.
struct InnerIo {
  Qcow2Queue* q;
  BackendQueue* target;
  IoRequest req;
  int result = 0;
  std::coroutine_handle<> handle;

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h);
  int await_resume() const noexcept { return result; }
};

static_assert(alignof(InnerIo) >= 2, "bit 0 of an inner cookie tells fast-path I/O apart");

// An outer request the fast path sent straight to the image file (see try_fast()). Its inner
// cookie is (slot index << 1) | 1; an InnerIo's cookie is its (aligned) address.
struct FastIo {
  uint64_t cookie = 0;  // the outer request's
  IoKind kind = IoKind::kRead;
  uint64_t offset = 0;
  uint64_t length = 0;
};
constexpr uint64_t kFastTag = 1;

// What an L2 entry says about one guest cluster.
struct Mapping {
  int error = 0;          // -errno: the lookup failed (I/O error, corrupt table)
  L2Table* table = nullptr;  // null: no L2 table for this cluster (unallocated)
  uint64_t index = 0;     // entry index in the table
  uint64_t entry = 0;     // 0 when there is no table
};

class Qcow2Queue final : public BackendQueue {
 public:
  Qcow2Queue(std::shared_ptr<ImageState> s, const BackendInfo& info, size_t depth, Fd epoll,
             EventFd own, std::unique_ptr<BackendQueue> file_q,
             std::unique_ptr<BackendQueue> backing_q, Decompressor decompressor)
      : s_(std::move(s)), info_(info), depth_(depth), epoll_(std::move(epoll)),
        own_(std::move(own)), fq_(std::move(file_q)), bq_(std::move(backing_q)), log_(s_->name),
        decompressor_(std::move(decompressor)) {
    s_->queue_open = true;
  }
  ~Qcow2Queue() override;

  Status submit(const IoRequest& req) override;
  void unplug() override;
  int event_fd() const override { return epoll_.get(); }
  size_t reap(std::vector<Completion>& out) override;
  void drain() override;
  size_t in_flight() const override { return ops_; }
  size_t depth() const override { return depth_; }

  // From InnerIo.
  void park(InnerIo* io) { parked_.push_back(io); }

 private:
  bool try_fast(const IoRequest& req);
  uint64_t cached_host(uint64_t g, bool for_write);
  void finish_fast(const Completion& c);
  Detached run_request(IoRequest req, std::vector<iovec> iov);
  Task<int> read(uint64_t offset, uint64_t length, std::span<const iovec> iov);
  Task<int> write(uint64_t offset, uint64_t length, std::span<const iovec> iov);
  Task<int> write_cluster(uint64_t g, uint64_t length, std::span<const iovec> iov, uint64_t pos);
  Task<int> load_compressed(uint64_t entry);
  Task<int> zero_range(uint64_t offset, uint64_t length, bool discard, bool may_unmap);
  Task<int> zero_cluster(uint64_t g, bool may_unmap);
  Task<Mapping> lookup(uint64_t g);
  Task<Mapping> lookup_for_write(uint64_t g);
  Task<int> load_l2(uint64_t offset);
  Task<int> load_refblock(uint64_t index);
  Task<uint64_t> allocate_cluster(int& error);
  Task<int> inner(BackendQueue* q, IoKind kind, uint64_t offset, uint64_t length,
                  std::span<const iovec> iov);
  Detached writeback_loop();
  Task<int> writeback();

  void finish(uint64_t cookie, int result);
  void pump();
  void run_ready();
  void wait_events(int timeout_ms);
  void evict();
  bool need_writeback() const;
  size_t dirty_l2_tables() const;
  bool metadata_dirty() const;
  int corrupt(const std::string& what);

  std::shared_ptr<ImageState> s_;
  const BackendInfo info_;
  const size_t depth_;
  Fd epoll_;
  EventFd own_;
  std::unique_ptr<BackendQueue> fq_;
  std::unique_ptr<BackendQueue> bq_;
  FailureLog log_;

  size_t ops_ = 0;  // outer requests started and not completed
  std::vector<Completion> ready_;
  bool signaled_ = false;
  bool reaping_ = false;  // inside reap(): what finishes now is returned without a signal
  std::vector<FastIo> fast_;        // slots of fast-path requests in flight
  std::vector<uint32_t> fast_free_;  // free slot indices
  RunList run_;
  std::vector<InnerIo*> parked_;  // inner submits refused with EAGAIN, retried in pump()
  std::vector<Completion> inner_done_;

  std::map<uint64_t, WaitList> allocating_;     // guest cluster -> writers waiting for it
  std::map<uint64_t, WaitList> creating_l2_;    // L1 index -> writers waiting for the table
  bool allocator_busy_ = false;
  WaitList allocator_waiters_;

  std::vector<uint64_t> flush_cookies_;  // guest flushes waiting for the next round
  bool writeback_wanted_ = false;
  bool writeback_running_ = false;
  bool writeback_failed_ = false;  // the last round failed

  // Compressed clusters: the decoder and the last decompressed cluster (keyed by its L2
  // entry: the compressed bytes of a counted cluster never change while the image is open).
  Decompressor decompressor_;
  AlignedBuffer unpacked_;
  uint64_t unpacked_entry_ = 0;
  bool unpacked_valid_ = false;
};

bool InnerIo::await_suspend(std::coroutine_handle<> h) {
  handle = h;
  req.cookie = reinterpret_cast<uint64_t>(this);
  auto started = target->submit(req);
  if (started) return true;
  if (started.error().code() == EAGAIN) {
    q->park(this);
    return true;
  }
  result = -started.error().code();
  return false;  // resume at once with the error
}

Result<std::unique_ptr<BackendQueue>> open(std::shared_ptr<ImageState> s, const BackendInfo& info,
                                           size_t depth) {
  depth = std::max<size_t>(depth, 1);
  // Each request has one inner I/O in flight at a time; writeback adds one more.
  auto file_q = HCN_TRY(s->file->open_queue(depth + 8));
  std::unique_ptr<BackendQueue> backing_q;
  if (s->backing) backing_q = HCN_TRY(s->backing->open_queue(depth));
  auto decompressor =
      HCN_TRY(with_context(Decompressor::create(s->header.compression_type), s->name));
  auto own = HCN_TRY(EventFd::create(EFD_NONBLOCK));
  Fd ep(::epoll_create1(EPOLL_CLOEXEC));
  if (!ep) return fail(from_errno("epoll_create1"));
  for (int fd : {file_q->event_fd(), backing_q ? backing_q->event_fd() : -1, own.fd()}) {
    if (fd < 0) continue;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (::epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &ev) < 0) return fail(from_errno("epoll_ctl"));
  }
  return std::unique_ptr<BackendQueue>(new Qcow2Queue(std::move(s), info, depth, std::move(ep),
                                                      std::move(own), std::move(file_q),
                                                      std::move(backing_q),
                                                      std::move(decompressor)));
}

Qcow2Queue::~Qcow2Queue() {
  drain();  // also writes back what is only in memory: a clean close loses nothing
  while (writeback_running_) wait_events(1000);
  s_->queue_open = false;
}

Status Qcow2Queue::submit(const IoRequest& req) {
  HCN_TRY_STATUS(check_request(req, info_));
  if (ops_ >= depth_) return fail(EAGAIN, "qcow2 queue full");
  ++ops_;
  if (try_fast(req)) return {};
  if (req.kind == IoKind::kFlush) {
    flush_cookies_.push_back(req.cookie);
    if (!writeback_running_) writeback_loop();
  } else {
    run_request(req, std::vector<iovec>(req.iov.begin(), req.iov.end()));
  }
  run_ready();
  return {};
}

// The host offset of guest offset g when memory alone answers it and no metadata changes: the
// L2 table is cached and the cluster holds data (for a write, also COPIED: written in place).
// 0 otherwise; the coroutine path then decides, loads, allocates or reports corruption.
uint64_t Qcow2Queue::cached_host(uint64_t g, bool for_write) {
  const uint64_t cluster = g >> s_->cluster_bits;
  const uint64_t l1_index = cluster >> (s_->cluster_bits - 3);
  if (l1_index >= s_->l1.entries.size()) return 0;
  const uint64_t l1e = s_->l1.entries[l1_index];
  const uint64_t l2_offset = l1e & kOffsetMask;
  if (l2_offset == 0 || (l1e & kL1ReservedMask)) return 0;
  auto it = s_->l2.find(l2_offset);
  if (it == s_->l2.end() || it->second.state != LoadState::kReady) return 0;
  L2Table& t = it->second;
  const uint64_t e = t.entries[cluster & (s_->l2_entries() - 1)];
  const uint64_t host = e & kOffsetMask;
  if ((e & (kL2Compressed | kL2ZeroFlag | kL2ReservedMask)) || host < s_->cluster_size ||
      host % s_->cluster_size != 0 || (for_write && !(e & kEntryCopied))) {
    return 0;
  }
  t.last_use = ++s_->use_counter;
  return host + (g & (s_->cluster_size - 1));
}

// The fast path: a read or write whose clusters are allocated, mapped by cached tables and
// contiguous on the host goes straight to the file queue as one request, with no coroutine,
// no copy of its iovec and no metadata work (an allocated COPIED cluster is written in place;
// the L2 entry already points at it). Ordering is unchanged: the slow path also sends such
// I/O to the file directly. Anything else (unallocated, zero, backing, corrupt, a full file
// queue) takes the slow path.
bool Qcow2Queue::try_fast(const IoRequest& req) {
  const bool write = req.kind == IoKind::kWrite;
  if ((req.kind != IoKind::kRead && !write) || (write && s_->corrupt)) return false;
  const uint64_t host = cached_host(req.offset, write);
  if (host == 0) return false;
  const uint64_t c = s_->cluster_size;
  const uint64_t end = req.offset + req.length;
  for (uint64_t g = (req.offset | (c - 1)) + 1; g < end; g += c) {
    if (cached_host(g, write) != host + (g - req.offset)) return false;
  }
  if (fast_free_.empty()) {
    fast_free_.push_back(static_cast<uint32_t>(fast_.size()));
    fast_.emplace_back();
  }
  const uint32_t slot = fast_free_.back();
  IoRequest to_file = req;
  to_file.offset = host;
  to_file.cookie = (uint64_t{slot} << 1) | kFastTag;
  if (!fq_->submit(to_file)) return false;  // e.g. EAGAIN: the slow path parks and retries
  fast_free_.pop_back();
  fast_[slot] = FastIo{req.cookie, req.kind, req.offset, req.length};
  return true;
}

void Qcow2Queue::finish_fast(const Completion& c) {
  const auto slot = static_cast<uint32_t>(c.cookie >> 1);
  const FastIo io = fast_[slot];
  fast_free_.push_back(slot);
  if (c.result < 0) log_.failed(io.kind, io.offset, io.length, c.result);
  finish(io.cookie, c.result);
}

void Qcow2Queue::unplug() {
  fq_->unplug();
  if (bq_) bq_->unplug();
}

void Qcow2Queue::finish(uint64_t cookie, int result) {
  ready_.push_back(Completion{cookie, result});
  --ops_;
  if (!signaled_ && !reaping_) {
    signaled_ = true;
    (void)own_.signal();
  }
}

void Qcow2Queue::run_ready() {
  while (!run_.empty()) {
    RunList now;
    now.swap(run_);
    for (auto h : now) h.resume();
  }
}

void Qcow2Queue::pump() {
  for (bool progress = true; progress;) {
    progress = false;
    inner_done_.clear();
    fq_->reap(inner_done_);
    if (bq_) bq_->reap(inner_done_);
    for (const Completion& c : inner_done_) {
      if (c.cookie & kFastTag) {
        finish_fast(c);
        continue;
      }
      auto* io = reinterpret_cast<InnerIo*>(c.cookie);
      io->result = c.result;
      run_.push_back(io->handle);
      progress = true;
    }
    if (!parked_.empty()) {
      auto parked = std::move(parked_);
      parked_.clear();
      for (InnerIo* io : parked) {
        if (!io->await_suspend(io->handle)) run_.push_back(io->handle);
      }
    }
    run_ready();
    unplug();
  }
}

size_t Qcow2Queue::reap(std::vector<Completion>& out) {
  if (signaled_) {
    (void)own_.consume();
    signaled_ = false;
  }
  reaping_ = true;
  pump();
  reaping_ = false;
  const size_t n = ready_.size();
  out.insert(out.end(), ready_.begin(), ready_.end());
  ready_.clear();
  return n;
}

void Qcow2Queue::wait_events(int timeout_ms) {
  unplug();
  pollfd p{epoll_.get(), POLLIN, 0};
  (void)::poll(&p, 1, timeout_ms);
  pump();
}

// Besides waiting for the guest's requests, a drain writes the tables back: a paused VM's
// image is then complete on storage (what migration and snapshots of a paused VM need).
void Qcow2Queue::drain() {
  while (ops_ > 0) wait_events(1000);
  if (s_->read_only || s_->corrupt || !metadata_dirty()) return;
  writeback_wanted_ = true;
  if (!writeback_running_) writeback_loop();
  while (writeback_running_) wait_events(1000);
}

int Qcow2Queue::corrupt(const std::string& what) {
  if (!s_->corrupt) {
    spdlog::error("{}: qcow2 metadata is corrupt: {}; writes are refused from now on (check the "
                  "image with 'qemu-img check')", s_->name, what);
  }
  s_->corrupt = true;
  return -EIO;
}

Task<int> Qcow2Queue::inner(BackendQueue* q, IoKind kind, uint64_t offset, uint64_t length,
                            std::span<const iovec> iov) {
  IoRequest req{kind, offset, length, iov, 0, false};
  const int r = co_await InnerIo{this, q, req, 0, {}};
  co_return r;
}

Detached Qcow2Queue::run_request(IoRequest req, std::vector<iovec> iov) {
  int r = 0;
  switch (req.kind) {
    case IoKind::kRead:
      r = co_await read(req.offset, req.length, iov);
      break;
    case IoKind::kWrite:
      r = s_->corrupt ? -EIO : co_await write(req.offset, req.length, iov);
      break;
    case IoKind::kDiscard:
      r = s_->corrupt ? -EIO : co_await zero_range(req.offset, req.length, true, true);
      break;
    case IoKind::kWriteZeroes:
      r = s_->corrupt ? -EIO : co_await zero_range(req.offset, req.length, false, req.may_unmap);
      break;
    case IoKind::kFlush:
      break;  // handled in submit()
  }
  if (r < 0) log_.failed(req.kind, req.offset, req.length, r);
  finish(req.cookie, r);
}

// --- metadata lookups ----------------------------------------------------------------------

Task<int> Qcow2Queue::load_l2(uint64_t offset) {
  auto [it, inserted] = s_->l2.try_emplace(offset);
  L2Table& t = it->second;
  if (!inserted && t.state == LoadState::kLoading) {
    co_await t.waiters.wait();
    co_return t.state == LoadState::kReady ? 0 : t.error;
  }
  if (!inserted && t.state == LoadState::kReady) co_return 0;
  t.state = LoadState::kLoading;
  ++t.pins;
  AlignedBuffer buf(s_->cluster_size);
  iovec v{buf.data(), s_->cluster_size};
  const int r = co_await inner(fq_.get(), IoKind::kRead, offset, s_->cluster_size, {&v, 1});
  if (r == 0) {
    t.entries.resize(s_->l2_entries());
    for (size_t i = 0; i < t.entries.size(); ++i) t.entries[i] = load_be64(buf.data() + 8 * i);
    t.state = LoadState::kReady;
  } else {
    t.state = LoadState::kFailed;
    t.error = r;
  }
  --t.pins;
  t.last_use = ++s_->use_counter;
  t.waiters.wake_all(run_);
  co_return r;
}

Task<Mapping> Qcow2Queue::lookup(uint64_t g) {
  Mapping m;
  const uint64_t cluster = g >> s_->cluster_bits;
  const uint64_t l1_index = cluster >> (s_->cluster_bits - 3);
  m.index = cluster & (s_->l2_entries() - 1);
  if (l1_index >= s_->l1.entries.size()) {
    m.error = corrupt("L1 table too small");
    co_return m;
  }
  for (;;) {
    const uint64_t l1e = s_->l1.entries[l1_index];
    const uint64_t l2_offset = l1e & kOffsetMask;
    if (l2_offset == 0) co_return m;  // no table: unallocated
    if ((l1e & kL1ReservedMask) || l2_offset % s_->cluster_size != 0) {
      m.error = corrupt(fmt::format("L1 entry {} = 0x{:x}", l1_index, l1e));
      co_return m;
    }
    auto it = s_->l2.find(l2_offset);
    if (it != s_->l2.end() && it->second.state == LoadState::kReady) {
      L2Table& t = it->second;
      t.last_use = ++s_->use_counter;
      m.table = &t;
      m.entry = t.entries[m.index];
      // Loads may have grown the cache past its limit; never evict the table returned here.
      ++t.pins;
      evict();
      --t.pins;
      const uint64_t host = m.entry & kOffsetMask;
      if (!(m.entry & kL2Compressed) &&
          ((m.entry & kL2ReservedMask) || host % s_->cluster_size != 0 ||
           (host != 0 && host < s_->cluster_size))) {
        m.error = corrupt(fmt::format("L2 entry for guest offset {} = 0x{:x}", g, m.entry));
      }
      co_return m;
    }
    const int r = co_await load_l2(l2_offset);
    if (r < 0) {
      m.error = r;
      co_return m;
    }
  }
}

Task<int> Qcow2Queue::load_refblock(uint64_t index) {
  auto [it, inserted] = s_->refblocks.try_emplace(index);
  RefBlock& b = it->second;
  if (!inserted) {
    if (b.state == LoadState::kLoading) co_await b.waiters.wait();
    if (b.state == LoadState::kReady) co_return 0;
    if (b.state == LoadState::kFailed && !inserted) b.state = LoadState::kLoading;
  }
  const uint64_t offset = s_->refcount_table.entries[index] & kOffsetMask;
  b.host_offset = offset;
  b.counts.assign(s_->refblock_entries(), 0);
  if (offset == 0) {
    b.state = LoadState::kReady;  // a new block: the allocator places it
    co_return 0;
  }
  AlignedBuffer buf(s_->cluster_size);
  iovec v{buf.data(), s_->cluster_size};
  const int r = co_await inner(fq_.get(), IoKind::kRead, offset, s_->cluster_size, {&v, 1});
  if (r == 0) {
    for (size_t i = 0; i < b.counts.size(); ++i) b.counts[i] = load_be16(buf.data() + 2 * i);
    b.state = LoadState::kReady;
  } else {
    b.state = LoadState::kFailed;
    b.error = r;
  }
  b.waiters.wake_all(run_);
  co_return r;
}

// Appends one cluster at the end of the image and counts it (refcount 1). Serialized: the
// allocator may wait for a refcount block load between reading and advancing next_free.
Task<uint64_t> Qcow2Queue::allocate_cluster(int& error) {
  while (allocator_busy_) co_await allocator_waiters_.wait();
  allocator_busy_ = true;
  const uint64_t c = s_->cluster_size;
  const uint64_t per_block = s_->refblock_entries();
  uint64_t host = 0;
  error = 0;
  while (host == 0) {
    const uint64_t idx = s_->next_free / c;
    const uint64_t bi = idx / per_block;
    if (bi >= s_->refcount_table.entries.size()) {
      spdlog::error("{}: qcow2 refcount table full (image cannot grow further)", s_->name);
      error = -ENOSPC;
      break;
    }
    auto it = s_->refblocks.find(bi);
    if (it == s_->refblocks.end() || it->second.state != LoadState::kReady) {
      if (int r = co_await load_refblock(bi); r < 0) {
        error = r;
        break;
      }
      continue;
    }
    RefBlock& b = it->second;
    if (b.host_offset == 0) {
      // The block covering this cluster does not exist yet: it takes this cluster itself.
      b.host_offset = s_->next_free;
      b.counts[idx % per_block] = 1;
      b.dirty.gen = s_->next_gen();
      s_->refcount_table.set(bi, b.host_offset, s_->next_gen());
      s_->next_free += c;
      continue;
    }
    if (b.counts[idx % per_block] != 0) {
      s_->next_free += c;  // in use (counted past the end of the file): skip it
      continue;
    }
    b.counts[idx % per_block] = 1;
    b.dirty.gen = s_->next_gen();
    host = s_->next_free;
    s_->next_free += c;
  }
  allocator_busy_ = false;
  allocator_waiters_.wake_all(run_);
  co_return host;
}

// Like lookup(), but creates the L2 table if the L1 entry is empty. The table is pinned.
Task<Mapping> Qcow2Queue::lookup_for_write(uint64_t g) {
  const uint64_t l1_index = (g >> s_->cluster_bits) >> (s_->cluster_bits - 3);
  for (;;) {
    Mapping m = co_await lookup(g);
    if (m.error < 0) co_return m;
    if (m.table) {
      ++m.table->pins;
      co_return m;
    }
    if (auto it = creating_l2_.find(l1_index); it != creating_l2_.end()) {
      co_await it->second.wait();
      continue;
    }
    creating_l2_.try_emplace(l1_index);
    int error = 0;
    const uint64_t host = co_await allocate_cluster(error);
    if (error == 0) {
      L2Table& t = s_->l2[host];
      t.entries.assign(s_->l2_entries(), 0);
      t.state = LoadState::kReady;
      t.fresh = true;
      t.dirty.gen = s_->next_gen();
      t.last_use = ++s_->use_counter;
      s_->l1.set(l1_index, host | kEntryCopied, s_->next_gen());
    }
    creating_l2_[l1_index].wake_all(run_);
    creating_l2_.erase(l1_index);
    if (error < 0) {
      m.error = error;
      co_return m;
    }
  }
}

// --- compressed clusters (qcow2_compress.hpp) ----------------------------------------------

// Makes unpacked_ hold the cluster the compressed descriptor `entry` points at. 0, or -EIO for
// a descriptor outside the file or data that does not decompress to a full cluster (that
// request fails; the image is not marked corrupt: reads of other clusters go on). Memory is
// bounded: the descriptor covers at most two clusters (its size field has cluster_bits - 8
// bits), the output is one cluster.
Task<int> Qcow2Queue::load_compressed(uint64_t entry) {
  if (unpacked_valid_ && unpacked_entry_ == entry) co_return 0;
  const uint64_t c = s_->cluster_size;
  const CompressedExtent e = compressed_extent(entry, s_->cluster_bits);
  // The header cluster never holds data; a range starting past the end of the file is bogus.
  if (!e.valid || e.offset < c || e.offset >= s_->file_size) co_return -EIO;
  // Read the whole sectors (the descriptor's range ends on a sector boundary; O_DIRECT files
  // need aligned I/O), clamped to the file: a short range is then a decompression error.
  const uint64_t start = e.offset & ~uint64_t{511};
  const uint64_t end = std::min(e.offset + e.length, s_->file_size);
  AlignedBuffer packed(end - start);
  iovec v{packed.data(), end - start};
  if (int r = co_await inner(fq_.get(), IoKind::kRead, start, end - start, {&v, 1}); r < 0) {
    co_return r;
  }
  // No suspension from here until the caller has copied the bytes out (see read()).
  if (unpacked_.size() < c) unpacked_ = AlignedBuffer(c);
  unpacked_valid_ = false;
  const int r = decompressor_.decompress({packed.data() + (e.offset - start), end - e.offset},
                                         {unpacked_.data(), c});
  if (r < 0) co_return r;
  unpacked_entry_ = entry;
  unpacked_valid_ = true;
  co_return 0;
}

// --- reads ----------------------------------------------------------------------------------

Task<int> Qcow2Queue::read(uint64_t offset, uint64_t length, std::span<const iovec> iov) {
  const uint64_t c = s_->cluster_size;
  std::vector<iovec> part;
  for (uint64_t pos = 0; pos < length;) {
    const uint64_t g = offset + pos;
    const uint64_t in = g & (c - 1);
    const uint64_t n = std::min(c - in, length - pos);
    Mapping m = co_await lookup(g);
    if (m.error < 0) co_return m.error;
    const uint64_t host = m.entry & kOffsetMask;
    if (m.entry & kL2Compressed) {
      if (int r = co_await load_compressed(m.entry); r < 0) co_return r;
      copy_to_iov(iov, pos, unpacked_.data() + in, n);
    } else if (m.entry & kL2ZeroFlag) {
      zero_iov(iov, pos, n);
    } else if (host != 0) {
      slice_iov(iov, pos, n, part);
      if (int r = co_await inner(fq_.get(), IoKind::kRead, host + in, n, part); r < 0) co_return r;
    } else if (bq_ && g < s_->backing_size) {
      // Unallocated: the backing image's bytes (zeroes past its end).
      const uint64_t from_backing = std::min(n, s_->backing_size - g);
      slice_iov(iov, pos, from_backing, part);
      if (int r = co_await inner(bq_.get(), IoKind::kRead, g, from_backing, part); r < 0) {
        co_return r;
      }
      if (from_backing < n) zero_iov(iov, pos + from_backing, n - from_backing);
    } else {
      zero_iov(iov, pos, n);
    }
    pos += n;
  }
  co_return 0;
}

// --- writes ---------------------------------------------------------------------------------

Task<int> Qcow2Queue::write(uint64_t offset, uint64_t length, std::span<const iovec> iov) {
  const uint64_t c = s_->cluster_size;
  for (uint64_t pos = 0; pos < length;) {
    const uint64_t g = offset + pos;
    const uint64_t n = std::min(c - (g & (c - 1)), length - pos);
    if (int r = co_await write_cluster(g, n, iov, pos); r < 0) co_return r;
    pos += n;
  }
  co_return 0;
}

// Writes [g, g+length) (inside one cluster) from iov at `pos`.
Task<int> Qcow2Queue::write_cluster(uint64_t g, uint64_t length, std::span<const iovec> iov,
                                    uint64_t pos) {
  const uint64_t c = s_->cluster_size;
  const uint64_t in = g & (c - 1);
  const uint64_t guest_cluster = g >> s_->cluster_bits;
  std::vector<iovec> part;
  for (;;) {
    Mapping m = co_await lookup(g);
    if (m.error < 0) co_return m.error;
    // A compressed cluster is never written in place: it is copied to a new cluster below.
    const uint64_t host = (m.entry & kL2Compressed) ? 0 : m.entry & kOffsetMask;
    if (host != 0 && !(m.entry & kL2ZeroFlag)) {
      if (!(m.entry & kEntryCopied)) co_return corrupt("shared cluster without the COPIED flag");
      slice_iov(iov, pos, length, part);
      co_return co_await inner(fq_.get(), IoKind::kWrite, host + in, length, part);
    }
    if (auto it = allocating_.find(guest_cluster); it != allocating_.end()) {
      co_await it->second.wait();  // another request is filling this cluster: then write in place
      continue;
    }
    break;
  }
  allocating_.try_emplace(guest_cluster);
  int r = 0;
  Mapping m = co_await lookup_for_write(g);  // pins the table
  L2Table* table = m.table;
  const bool compressed = (m.entry & kL2Compressed) != 0;
  // A preallocated zero cluster is reused; a compressed one's bytes stay where they are.
  uint64_t host = compressed ? 0 : m.entry & kOffsetMask;
  if (m.error < 0) {
    r = m.error;
  } else if (host == 0) {
    int error = 0;
    host = co_await allocate_cluster(error);
    r = error;
  }
  if (r == 0) {
    // Copy-on-write: the cluster is written whole, from the guest's data and, around it, the
    // compressed cluster's bytes, or the backing image's (or zeroes for a zero cluster / past
    // the backing's end).
    if (length == c) {
      slice_iov(iov, pos, length, part);
      r = co_await inner(fq_.get(), IoKind::kWrite, host, c, part);
    } else {
      AlignedBuffer buf(c);
      std::memset(buf.data(), 0, c);
      const uint64_t base = g - in;
      if (compressed) {
        r = co_await load_compressed(m.entry);
        if (r == 0) std::memcpy(buf.data(), unpacked_.data(), c);
      } else if (!(m.entry & kL2ZeroFlag) && bq_ && base < s_->backing_size) {
        const uint64_t n = std::min(c, s_->backing_size - base);
        iovec v{buf.data(), n};
        r = co_await inner(bq_.get(), IoKind::kRead, base, n, {&v, 1});
      }
      if (r == 0) {
        copy_from_iov(iov, pos, buf.data() + in, length);
        iovec v{buf.data(), c};
        r = co_await inner(fq_.get(), IoKind::kWrite, host, c, {&v, 1});
      }
    }
  }
  if (r == 0) {
    // The data is on storage: only now may the table point at it (written back in a round).
    table->entries[m.index] = host | kEntryCopied;
    table->dirty.gen = s_->next_gen();
  }
  if (table) --table->pins;
  allocating_[guest_cluster].wake_all(run_);
  allocating_.erase(guest_cluster);
  if (need_writeback() && !writeback_running_ && !writeback_failed_) {
    writeback_wanted_ = true;
    writeback_loop();
  }
  co_return r;
}

// --- discard and write-zeroes ---------------------------------------------------------------

Task<int> Qcow2Queue::zero_range(uint64_t offset, uint64_t length, bool discard, bool may_unmap) {
  const uint64_t c = s_->cluster_size;
  AlignedBuffer zeroes;
  for (uint64_t pos = 0; pos < length;) {
    const uint64_t g = offset + pos;
    const uint64_t n = std::min(c - (g & (c - 1)), length - pos);
    int r = 0;
    if (n == c) {
      r = co_await zero_cluster(g, may_unmap);
    } else if (!discard) {
      // A partial cluster of write-zeroes is an ordinary write of zeroes.
      if (zeroes.size() < c) {
        zeroes = AlignedBuffer(c);
        std::memset(zeroes.data(), 0, c);
      }
      iovec v{zeroes.data(), n};
      r = co_await write_cluster(g, n, {&v, 1}, 0);
    }  // a partial cluster of discard is left as it is (discard_zeroes = false)
    if (r < 0) co_return r;
    pos += n;
  }
  co_return 0;
}

Task<int> Qcow2Queue::zero_cluster(uint64_t g, bool may_unmap) {
  const uint64_t guest_cluster = g >> s_->cluster_bits;
  for (;;) {
    if (auto it = allocating_.find(guest_cluster); it != allocating_.end()) {
      co_await it->second.wait();
      continue;
    }
    Mapping m = co_await lookup(g);
    if (m.error < 0) co_return m.error;
    if (allocating_.count(guest_cluster)) continue;  // someone started while we looked
    if (m.entry & kL2Compressed) {
      // Reads as zeroes from now on, with no host cluster (a clone's backing stays hidden).
      // Nothing is punched: the compressed bytes may share sectors with other clusters.
      m.table->entries[m.index] = kL2ZeroFlag;
      m.table->dirty.gen = s_->next_gen();
      co_return 0;
    }
    const uint64_t host = m.entry & kOffsetMask;
    if (m.entry & kL2ZeroFlag) co_return 0;  // reads as zeroes already
    if (host == 0) {
      // Unallocated: reads the backing image, or zeroes without one. A discard in a clone
      // hides the parent's bytes too (as QEMU does): stale golden-image data never reappears.
      if (!bq_ || g >= s_->backing_size) co_return 0;
      allocating_.try_emplace(guest_cluster);
      Mapping w = co_await lookup_for_write(g);
      if (w.error == 0) {
        w.table->entries[w.index] = kL2ZeroFlag;
        w.table->dirty.gen = s_->next_gen();
        --w.table->pins;
      }
      allocating_[guest_cluster].wake_all(run_);
      allocating_.erase(guest_cluster);
      co_return w.error;
    }
    // Allocated: mark it zero but keep the cluster (refcounts never go down, see the header),
    // then give the host range back to the file system where the guest allows it.
    m.table->entries[m.index] = host | kEntryCopied | kL2ZeroFlag;
    m.table->dirty.gen = s_->next_gen();
    if (may_unmap && s_->file->info().discard_granularity != 0) {
      // A write that reuses this cluster waits until the punch is done: the file queue does
      // not order the two, and the punch must not land on the new data.
      allocating_.try_emplace(guest_cluster);
      (void)co_await inner(fq_.get(), IoKind::kDiscard, host, s_->cluster_size, {});
      allocating_[guest_cluster].wake_all(run_);
      allocating_.erase(guest_cluster);
    }
    co_return 0;
  }
}

// --- metadata writeback ---------------------------------------------------------------------

size_t Qcow2Queue::dirty_l2_tables() const {
  size_t dirty = 0;
  for (const auto& [off, t] : s_->l2) dirty += (t.fresh || t.dirty.dirty()) ? 1 : 0;
  return dirty;
}

// Refcount table and L1 changes always come with a changed refcount block or L2 table.
bool Qcow2Queue::metadata_dirty() const {
  for (const auto& [index, b] : s_->refblocks) {
    if (b.dirty.dirty()) return true;
  }
  return dirty_l2_tables() > 0;
}

bool Qcow2Queue::need_writeback() const { return dirty_l2_tables() > s_->l2_limit / 2; }

void Qcow2Queue::evict() {
  while (s_->l2.size() > s_->l2_limit) {
    auto victim = s_->l2.end();
    for (auto it = s_->l2.begin(); it != s_->l2.end(); ++it) {
      const L2Table& t = it->second;
      const bool idle = t.pins == 0 && t.waiters.empty() && !t.fresh && !t.dirty.dirty() &&
                        t.state != LoadState::kLoading;
      if (idle && (victim == s_->l2.end() || t.last_use < victim->second.last_use)) victim = it;
    }
    if (victim == s_->l2.end()) {
      // Everything is dirty or in use: a writeback round makes tables evictable.
      // (After a failed round only a guest flush or the close retries: no busy loop.)
      if (!writeback_running_ && !writeback_failed_) {
        writeback_wanted_ = true;
        writeback_loop();
      }
      return;
    }
    s_->l2.erase(victim);
  }
}

Detached Qcow2Queue::writeback_loop() {
  writeback_running_ = true;
  while (!flush_cookies_.empty() || writeback_wanted_) {
    auto cookies = std::move(flush_cookies_);
    flush_cookies_.clear();
    writeback_wanted_ = false;
    const int r = co_await writeback();
    if (r < 0) log_.failed(IoKind::kFlush, 0, 0, r);
    writeback_failed_ = r < 0;
    for (uint64_t cookie : cookies) finish(cookie, r);
  }
  writeback_running_ = false;
  evict();
}

// One round (see qcow2_backend.hpp): A. refcount blocks + new L2 tables, flush; B. refcount
// table, flush; C. changed L2 tables + L1, flush. The tables are copied when the round starts:
// entries changed later belong to the next round.
Task<int> Qcow2Queue::writeback() {
  struct Write {
    uint64_t offset;
    AlignedBuffer bytes;
  };
  struct Done {
    Dirty* dirty;
    uint64_t gen;
    bool* fresh;
  };
  std::vector<Write> phase_a, phase_b, phase_c;
  std::vector<Done> done;
  const uint64_t c = s_->cluster_size;
  if (!s_->read_only && !s_->corrupt) {
    for (auto& [index, b] : s_->refblocks) {
      if (b.state != LoadState::kReady || !b.dirty.dirty() || b.host_offset == 0) continue;
      Write w{b.host_offset, AlignedBuffer(c)};
      for (size_t i = 0; i < b.counts.size(); ++i) store_be16(w.bytes.data() + 2 * i, b.counts[i]);
      phase_a.push_back(std::move(w));
      done.push_back({&b.dirty, b.dirty.gen, nullptr});
    }
    for (auto& [offset, t] : s_->l2) {
      if (t.state != LoadState::kReady || !(t.fresh || t.dirty.dirty())) continue;
      Write w{offset, AlignedBuffer(c)};
      for (size_t i = 0; i < t.entries.size(); ++i) store_be64(w.bytes.data() + 8 * i, t.entries[i]);
      (t.fresh ? phase_a : phase_c).push_back(std::move(w));
      done.push_back({&t.dirty, t.dirty.gen, t.fresh ? &t.fresh : nullptr});
    }
    auto blocks = [&](BlockTable& table, std::vector<Write>& phase) {
      for (size_t bi = 0; bi < table.blocks.size(); ++bi) {
        if (!table.blocks[bi].dirty()) continue;
        Write w{table.disk_offset + bi * 512, AlignedBuffer(512)};
        std::memset(w.bytes.data(), 0, 512);
        for (size_t i = 0; i < 64 && bi * 64 + i < table.entries.size(); ++i) {
          store_be64(w.bytes.data() + 8 * i, table.entries[bi * 64 + i]);
        }
        phase.push_back(std::move(w));
        done.push_back({&table.blocks[bi], table.blocks[bi].gen, nullptr});
      }
    };
    blocks(s_->refcount_table, phase_b);
    blocks(s_->l1, phase_c);
  }
  for (auto* phase : {&phase_a, &phase_b, &phase_c}) {
    if (phase != &phase_a && phase->empty()) continue;
    for (Write& w : *phase) {
      iovec v{w.bytes.data(), w.bytes.size()};
      if (int r = co_await inner(fq_.get(), IoKind::kWrite, w.offset, w.bytes.size(), {&v, 1});
          r < 0) {
        co_return r;
      }
    }
    if (int r = co_await inner(fq_.get(), IoKind::kFlush, 0, 0, {}); r < 0) co_return r;
  }
  // Pointers in `done` stay valid: tables with dirty state are never evicted, and refcount
  // blocks are never erased.
  for (const Done& d : done) {
    d.dirty->written_gen = std::max(d.dirty->written_gen, d.gen);
    if (d.fresh) *d.fresh = false;
  }
  co_return 0;
}

}  // namespace

Result<std::unique_ptr<BackendQueue>> make_qcow2_queue(std::shared_ptr<ImageState> state,
                                                       const BackendInfo& info, size_t depth) {
  return open(std::move(state), info, depth);
}

}  // namespace hcnode::blockdev::qcow2
