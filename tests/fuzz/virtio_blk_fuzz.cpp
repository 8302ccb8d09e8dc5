// libFuzzer target: the virtio-blk request path as a hostile guest drives it — split virtqueue
// (pop, descriptor walking, direct and indirect chains, used ring, notification suppression)
// feeding parse_blk_request (compute/devices/virtio_blk/blk_request.hpp) under fuzzed device
// limits (capacity, read-only, DISCARD / WRITE_ZEROES on or off, small max_segments).
//
// Every chain the queue accepts is parsed, and the result is checked against an independent
// reference model written from virtio 1.2 5.2.6 (see check_parse below): success if and only if
// no rule is broken, a failure code that one of the broken rules asks for, the exact data iovecs
// and status byte, ranges inside the disk (computed in 128 bits), read-only disks never
// written. Then the request is "performed" through the returned host pointers (IN data and the
// status byte written, OUT data read), so ASan catches any pointer outside the fake guest RAM.
//
// What the model knows, and from where:
//   - the spec's numbers and layouts (request types, status values, the 16-byte header and
//     segment, 512-byte sectors, descriptor flags, ring layout) are transcribed below in
//     namespace `spec` from the spec text, not included from the device's blk_spec.hpp;
//   - the chain: the model walks the descriptors in guest memory itself (2.7.5, 2.7.5.3), from
//     the head it reads in the available ring at its own count of popped chains (2.7.6), and
//     in structured mode also checks the walk against the buffers the driver side built, when
//     nothing overwrote their descriptors; readable and writable byte counts, the status byte
//     and the data views come from that walk, never from the queue's DescriptorChain (which is
//     only compared with it);
//   - where the spec leaves the device's answer open, hcnode's documented choices:
//     namespace `choice` in compute/devices/virtio_blk/blk_spec.hpp (the only thing the model
//     takes from that header), and the list of unnumbered choices above it.
//
// Input: a 16-byte header, then either a structured program or a raw RAM image.
//   byte 0    features/limits: bit 0 VIRTIO_F_INDIRECT_DESC, 1 VIRTIO_F_EVENT_IDX, 2 raw mode,
//             3 read-only, 4 DISCARD, 5 WRITE_ZEROES, 6 small max_segments, 7 huge capacity
//   byte 1    queue size 1 << ((b & 0x7f) % 9); bit 7: guest RAM starts at 1 MiB instead of 0
//   byte 2    max_segments = 1 + b % 4 when bit 6 of byte 0 is set (else 1024)
//   bytes 3-6 capacity in sectors (le32); with bit 7 of byte 0: 2^55 - 1 - that (near 2^64 B)
//   7-10, 11-14  max_discard_sectors, max_write_zeroes_sectors (le32)
//   byte 15   seed of the device-side actions
// Structured mode (bit 2 clear): a sequence of requests, each built the way a driver would
// (MockSplitQueue rings, 64 KiB of RAM) from a few bytes: request type, sector picked near 0,
// near the end of the disk or anywhere, data length, discard segment, how the readable and the
// writable parts are split across descriptors (zero-length pieces included), direct or indirect
// (with a direct prefix), aliased buffers, stray byte corruptions and ring actions. Bytes past
// the end of the input read as 0, so any input is a valid program. tests/fuzz/make_seeds.py
// writes the seed corpus in this format.
// Raw mode (bit 2 set): byte 16 places the rings (bits 0-3) and "tames" the descriptor table
// (bit 4: addresses, lengths and next fields folded into range); the rest is the initial
// contents of 16 KiB of guest RAM; up to 64 chains are popped.
//
// Build: tests/fuzz/run-fuzzers.sh (tests/fuzz/README.md).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

#include "compute/devices/virtio_blk/blk_request.hpp"
#include "compute/devices/virtio_blk/blk_spec.hpp"  // only its namespace `choice`
#include "compute/virtio/split_queue.hpp"
#include "tests/fakes/fake_guest_memory.hpp"
#include "tests/fakes/mock_split_queue.hpp"

// The code under test and its interface types; no constants (those come from `spec` below).
using hcnode::compute::virtio::Buffer;
using hcnode::compute::virtio::ChainResult;
using hcnode::compute::virtio::DescriptorChain;
using hcnode::compute::virtio::QueueConfig;
using hcnode::compute::virtio::SplitQueue;
using hcnode::compute::virtio::VirtqDescriptor;
using hcnode::compute::virtio::blk::BlkFailure;
using hcnode::compute::virtio::blk::BlkLimits;
using hcnode::compute::virtio::blk::BlkOp;
using hcnode::compute::virtio::blk::BlkRequest;
using hcnode::compute::virtio::blk::parse_blk_request;
using hcnode::compute::virtio::blk::ParseResult;
using hcnode::testing::FakeGuestMemory;
using hcnode::testing::MockSplitQueue;
namespace choice = hcnode::compute::virtio::blk::choice;

#define FUZZ_CHECK(cond)                                                               \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      std::fprintf(stderr, "virtio_blk_fuzz: check failed at line %d: %s\n", __LINE__, \
                   #cond);                                                             \
      std::abort();                                                                    \
    }                                                                                  \
  } while (0)

namespace {

constexpr uint64_t kStructuredRam = 64 * 1024;
constexpr uint64_t kRawRam = 16 * 1024;
constexpr unsigned kMaxRequests = 48;
constexpr unsigned kMaxRawPops = 64;

// Forward reader; past the end every read is 0.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : p_(data), n_(size) {}
  uint8_t u8() {
    if (n_ == 0) return 0;
    --n_;
    return *p_++;
  }
  uint16_t u16() { return static_cast<uint16_t>(u8() | (u8() << 8)); }
  uint32_t u32() { return u16() | (uint32_t{u16()} << 16); }
  uint64_t u64() { return u32() | (uint64_t{u32()} << 32); }
  bool empty() const { return n_ == 0; }
  std::span<const uint8_t> rest() const { return {p_, n_}; }

 private:
  const uint8_t* p_;
  size_t n_;
};

// Guest RAM of `size` bytes at `base`, zeroed. One buffer per shape, reused across runs (a fresh
// allocation per run costs more than the run: ASan's quarantine turns it into page faults).
FakeGuestMemory& fresh_ram(uint64_t size, uint64_t base) {
  static FakeGuestMemory small_low(kRawRam, 0), small_high(kRawRam, 0x100000);
  static FakeGuestMemory big_low(kStructuredRam, 0), big_high(kStructuredRam, 0x100000);
  FakeGuestMemory& mem = size == kRawRam ? (base == 0 ? small_low : small_high)
                                         : (base == 0 ? big_low : big_high);
  FUZZ_CHECK(mem.ram_size() == size && mem.base() == base);
  std::memset(mem.host(base), 0, size);
  return mem;
}

// ---------------------------------------------------------------------------------------------
// The spec's numbers, transcribed from virtio 1.2 for the model (and the driver side). Not
// taken from the device's headers: the model is checked against the parser, so it must not
// share the parser's transcription of the spec.
namespace spec {
// 2.7.5 struct virtq_desc { le64 addr; le32 len; le16 flags; le16 next; }
constexpr uint64_t kDescSize = 16;
constexpr uint16_t kDescNext = 1;      // VIRTQ_DESC_F_NEXT
constexpr uint16_t kDescWrite = 2;     // VIRTQ_DESC_F_WRITE: device-writable
constexpr uint16_t kDescIndirect = 4;  // VIRTQ_DESC_F_INDIRECT (2.7.5.3)
// 2.7.6 struct virtq_avail { le16 flags; le16 idx; le16 ring[size]; le16 used_event; }
constexpr uint64_t kAvailRing = 4;
constexpr uint16_t kAvailNoInterrupt = 1;  // VIRTQ_AVAIL_F_NO_INTERRUPT
// 2.7.8 struct virtq_used { le16 flags; le16 idx; struct { le32 id; le32 len; } ring[size]; }
constexpr uint64_t kUsedIdx = 2;
constexpr uint64_t kUsedRing = 4;
constexpr uint64_t kUsedElem = 8;
// 6 "Reserved Feature Bits"
constexpr uint64_t kFIndirectDesc = 1ull << 28;  // VIRTIO_F_INDIRECT_DESC
constexpr uint64_t kFEventIdx = 1ull << 29;      // VIRTIO_F_EVENT_IDX

// 5.2.6 struct virtio_blk_req { le32 type; le32 reserved; le64 sector; u8 data[]; u8 status; }
constexpr uint64_t kReqType = 0;
constexpr uint64_t kReqSector = 8;
constexpr uint64_t kReqHeader = 16;  // type, reserved, sector
constexpr uint32_t kTIn = 0;         // VIRTIO_BLK_T_IN
constexpr uint32_t kTOut = 1;        // VIRTIO_BLK_T_OUT
constexpr uint32_t kTFlush = 4;      // VIRTIO_BLK_T_FLUSH
constexpr uint32_t kTGetId = 8;      // VIRTIO_BLK_T_GET_ID
constexpr uint32_t kTGetLifetime = 10;
constexpr uint32_t kTDiscard = 11;
constexpr uint32_t kTWriteZeroes = 13;
constexpr uint32_t kTSecureErase = 14;
constexpr uint8_t kSOk = 0;      // VIRTIO_BLK_S_OK
constexpr uint8_t kSIoErr = 1;   // VIRTIO_BLK_S_IOERR: "device or driver error"
constexpr uint8_t kSUnsupp = 2;  // VIRTIO_BLK_S_UNSUPP: "a request unsupported by device"
// "The sector number indicates the offset (multiplied by 512)"
constexpr uint64_t kSector = 512;
// struct virtio_blk_discard_write_zeroes { le64 sector; le32 num_sectors; le32 flags; }, with
// flags bit 0 `unmap` and 31 reserved bits.
constexpr uint64_t kSegSize = 16;
constexpr uint64_t kSegSector = 0;
constexpr uint64_t kSegNumSectors = 8;
constexpr uint64_t kSegFlags = 12;
constexpr uint32_t kSegUnmap = 1;
}  // namespace spec

// ---------------------------------------------------------------------------------------------
// Reference model of 5.2.6, independent of blk_request.cpp and of walk_chain.

// Little-endian `bytes`-byte value at guest address `gpa` (inside RAM: the caller checked).
uint64_t ram_le(const FakeGuestMemory& mem, uint64_t gpa, int bytes) {
  auto s = mem.slice(gpa, static_cast<uint64_t>(bytes));
  FUZZ_CHECK(s.has_value());
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | (*s)[static_cast<size_t>(i)];
  return v;
}

struct Piece {
  uint64_t gpa = 0;
  uint64_t len = 0;
  bool writable = false;
  bool operator==(const Piece&) const = default;
};

// The chain as the model sees it: its pieces in order, device-readable ones first.
struct ModelChain {
  std::vector<Piece> pieces;
  size_t nread = 0;
  uint64_t rbytes = 0;  // device-readable bytes
  uint64_t wbytes = 0;  // device-writable bytes
  std::span<const Piece> readable() const { return {pieces.data(), nread}; }
  std::span<const Piece> writable() const { return std::span<const Piece>(pieces).subspan(nread); }
};

// Walks the descriptor chain at `head` in guest memory as 2.7.5 defines it, for a chain the
// queue accepted (so every rule it relies on must hold; each is checked, a violation means the
// queue accepted a chain the spec gives no meaning to).
ModelChain model_walk(const FakeGuestMemory& mem, uint64_t desc_table, uint16_t qsize,
                      uint16_t head) {
  ModelChain c;
  uint64_t table = desc_table;
  uint64_t entries = qsize;
  uint64_t index = head;
  uint64_t hops = 0;
  bool in_indirect = false;
  for (;;) {
    FUZZ_CHECK(index < entries);    // `next` indexes the same table
    FUZZ_CHECK(++hops <= entries);  // "loops in the descriptor chain are forbidden" (2.7.5.2)
    const uint64_t at = table + spec::kDescSize * index;
    const uint64_t addr = ram_le(mem, at, 8);
    const uint64_t len = ram_le(mem, at + 8, 4);
    const auto flags = static_cast<uint16_t>(ram_le(mem, at + 12, 2));
    const auto next = static_cast<uint16_t>(ram_le(mem, at + 14, 2));
    if ((flags & spec::kDescIndirect) != 0) {
      // 2.7.5.3: a table of len/16 descriptors, chained from its first; not nested, not with
      // NEXT (2.7.5.3.1); the WRITE flag of this descriptor is ignored (2.7.5.3.2).
      FUZZ_CHECK(!in_indirect && (flags & spec::kDescNext) == 0);
      FUZZ_CHECK(len > 0 && len % spec::kDescSize == 0);
      table = addr;
      entries = len / spec::kDescSize;
      index = 0;
      hops = 0;
      in_indirect = true;
      continue;
    }
    FUZZ_CHECK(mem.slice(addr, len).has_value());
    const bool writable = (flags & spec::kDescWrite) != 0;
    // 2.7.4: device-writable elements after every device-readable one.
    FUZZ_CHECK(writable || c.nread == c.pieces.size());
    c.pieces.push_back(Piece{addr, len, writable});
    if (writable) {
      c.wbytes += len;
    } else {
      ++c.nread;
      c.rbytes += len;
    }
    if ((flags & spec::kDescNext) == 0) return c;
    index = next;
  }
}

bool same_pieces(const ModelChain& c, const std::vector<Buffer>& buffers) {
  if (c.pieces.size() != buffers.size()) return false;
  for (size_t i = 0; i < buffers.size(); ++i) {
    if (c.pieces[i] != Piece{buffers[i].gpa, buffers[i].len, buffers[i].writable}) return false;
  }
  return true;
}

// Byte `pos` of the concatenation of `pieces` (the caller knows it exists).
uint8_t chain_byte(const FakeGuestMemory& mem, std::span<const Piece> pieces, uint64_t pos) {
  for (const Piece& b : pieces) {
    if (pos < b.len) return static_cast<uint8_t>(ram_le(mem, b.gpa + pos, 1));
    pos -= b.len;
  }
  FUZZ_CHECK(false);
  return 0;
}

uint64_t chain_le(const FakeGuestMemory& mem, std::span<const Piece> pieces, uint64_t pos,
                  int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) {
    v = (v << 8) | chain_byte(mem, pieces, pos + static_cast<uint64_t>(i));
  }
  return v;
}

// Host views of [lo, lo + len) of the concatenation of `pieces`, non-empty pieces only.
std::vector<iovec> reference_views(const FakeGuestMemory& mem, std::span<const Piece> pieces,
                                   uint64_t lo, uint64_t len) {
  std::vector<iovec> views;
  const uint64_t hi = lo + len;
  uint64_t start = 0;
  for (const Piece& b : pieces) {
    const uint64_t end = start + b.len;
    const uint64_t a = std::max(start, lo);
    const uint64_t z = std::min(end, hi);
    if (a < z) {
      auto s = mem.slice(b.gpa + (a - start), z - a);
      FUZZ_CHECK(s.has_value());
      views.push_back(iovec{s->data(), s->size()});
    }
    start = end;
  }
  return views;
}

bool same_views(const std::vector<iovec>& a, const std::vector<iovec>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].iov_base != b[i].iov_base || a[i].iov_len != b[i].iov_len) return false;
  }
  return true;
}

// Do the chain's pieces occupy pairwise disjoint guest memory? (A guest may alias them; then
// "the status byte is not inside a data buffer" is the guest's own doing and not checked.)
bool disjoint_pieces(const ModelChain& c) {
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const Piece& b : c.pieces) {
    if (b.len > 0) ranges.emplace_back(b.gpa, b.gpa + b.len);
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first < ranges[i - 1].second) return false;
  }
  return true;
}

// 5.2.6.1: "A driver MUST NOT submit a request which would cause a read or write beyond
// capacity" (computed in 128 bits: sector is any le64).
bool past_capacity(uint64_t sector, uint64_t len, uint64_t capacity) {
  return static_cast<unsigned __int128>(sector) * spec::kSector + len > capacity;
}

// -DHCNODE_FUZZ_STATS: count outcomes and print them at exit (is the fuzzer reaching the
// success paths of every request type?). Off in the fuzzing builds.
#ifdef HCNODE_FUZZ_STATS
struct Stats {
  unsigned long ok[6] = {}, fail[3] = {}, chain_errors = 0, built_checked = 0;
  ~Stats() {
    std::fprintf(stderr, "stats: ok read=%lu write=%lu flush=%lu get-id=%lu discard=%lu "
                 "write-zeroes=%lu; failed ioerr=%lu unsupp=%lu; chain errors %lu; walks "
                 "checked against the built buffers %lu\n",
                 ok[0], ok[1], ok[2], ok[3], ok[4], ok[5], fail[1], fail[2], chain_errors,
                 built_checked);
  }
} stats;
#define FUZZ_STAT(expr) (stats.expr)
#else
#define FUZZ_STAT(expr) ((void)0)
#endif

// Checks one parse against the reference model. Returns the used length to report.
uint32_t check_parse(const FakeGuestMemory& mem, const ModelChain& chain, const BlkLimits& limits,
                     const ParseResult& result, const BlkRequest& req) {
  const auto* ram_lo = static_cast<const uint8_t*>(mem.slice(mem.base(), 0)->data());
  const auto* ram_hi = ram_lo + mem.ram_size();
  const uint64_t rbytes = chain.rbytes;
  const uint64_t wbytes = chain.wbytes;

  // The status byte: "the final byte of the last writable buffer" — of the last non-empty one.
  uint8_t* exp_status = nullptr;
  for (auto it = chain.writable().rbegin(); it != chain.writable().rend(); ++it) {
    if (it->len > 0) {
      exp_status = mem.slice(it->gpa + it->len - 1, 1)->data();
      break;
    }
  }
  FUZZ_CHECK((exp_status == nullptr) == (wbytes == 0));

  if (!result) {
    const BlkFailure& f = result.error();
    FUZZ_CHECK(f.status == exp_status);
    FUZZ_CHECK(f.code == spec::kSIoErr || f.code == spec::kSUnsupp);
    FUZZ_CHECK(!f.reason.empty());
  } else {
    FUZZ_CHECK(req.status == exp_status);
    FUZZ_CHECK(req.status != nullptr);
    FUZZ_CHECK(req.used_len_ok >= 1 && req.used_len_ok <= wbytes);
    FUZZ_CHECK(req.iov.size() <= limits.max_segments);
    const bool disjoint = disjoint_pieces(chain);
    uint64_t iov_total = 0;
    for (const iovec& v : req.iov) {
      const auto* b = static_cast<const uint8_t*>(v.iov_base);
      FUZZ_CHECK(v.iov_len > 0);
      FUZZ_CHECK(b >= ram_lo && b <= ram_hi && v.iov_len <= static_cast<size_t>(ram_hi - b));
      iov_total += v.iov_len;
      if (disjoint) {
        FUZZ_CHECK(!(req.status >= b && req.status < b + v.iov_len));
      }
    }
    switch (req.op) {
      case BlkOp::kRead:
      case BlkOp::kWrite:
      case BlkOp::kGetId:
        FUZZ_CHECK(iov_total == req.length);
        break;
      case BlkOp::kFlush:
      case BlkOp::kDiscard:
      case BlkOp::kWriteZeroes:
        FUZZ_CHECK(req.iov.empty());
        break;
    }
    if (req.op != BlkOp::kFlush && req.op != BlkOp::kGetId) {
      FUZZ_CHECK(req.offset % spec::kSector == 0);
      FUZZ_CHECK(req.offset <= limits.capacity_bytes &&
                 req.length <= limits.capacity_bytes - req.offset);
    }
    if (limits.read_only) {
      FUZZ_CHECK(req.op != BlkOp::kWrite && req.op != BlkOp::kDiscard &&
                 req.op != BlkOp::kWriteZeroes);
    }
    FUZZ_CHECK(req.op != BlkOp::kDiscard || limits.discard);
    FUZZ_CHECK(req.op != BlkOp::kWriteZeroes || limits.write_zeroes);
    FUZZ_CHECK(!req.unmap || req.op == BlkOp::kWriteZeroes);
    FUZZ_CHECK(to_string(req.op) != std::string_view("unknown"));
  }

  // Which rules does the request break (a bit per status one of them asks for), and what must
  // a success look like? Statuses: the spec's where it gives one; IOERR for the driver errors
  // it gives none for ("VIRTIO_BLK_S_IOERR for device or driver error", 5.2.6); `choice::`
  // where blk_spec.hpp documents hcnode's answer to what the spec leaves open.
  unsigned broken = 0;
  auto breaks = [&](uint8_t status) { broken |= 1u << status; };
  BlkOp op = BlkOp::kFlush;
  uint64_t offset = 0, length = 0;
  uint64_t written = 0;  // data bytes the device writes on success
  bool unmap = false;
  std::vector<iovec> views;
  if (wbytes == 0) {
    breaks(spec::kSIoErr);  // no status byte: nothing to report (choice list: used length 0)
  } else if (rbytes < spec::kReqHeader) {
    breaks(spec::kSIoErr);  // not even the header: a driver error
  } else {
    const auto type = static_cast<uint32_t>(chain_le(mem, chain.readable(), spec::kReqType, 4));
    const uint64_t sector = chain_le(mem, chain.readable(), spec::kReqSector, 8);
    const uint64_t payload = rbytes - spec::kReqHeader;  // readable bytes after the header
    const uint64_t in_data = wbytes - 1;                 // writable bytes before the status
    switch (type) {
      case spec::kTIn:
      case spec::kTOut: {
        const bool write = type == spec::kTOut;
        op = write ? BlkOp::kWrite : BlkOp::kRead;
        // OUT: data[] follows the header (readable); IN: data[] precedes the status (writable).
        length = write ? payload : in_data;
        views = write ? reference_views(mem, chain.readable(), spec::kReqHeader, length)
                      : reference_views(mem, chain.writable(), 0, length);
        if (write && limits.read_only) breaks(spec::kSIoErr);              // 5.2.6.2
        if (length % spec::kSector != 0) breaks(spec::kSIoErr);            // 5.2.6.1
        if (past_capacity(sector, length, limits.capacity_bytes)) breaks(spec::kSIoErr);
        if (length > choice::kMaxDataBytes) breaks(spec::kSIoErr);
        if (views.size() > limits.max_segments) breaks(spec::kSIoErr);     // over seg_max
        offset = sector * spec::kSector;
        written = write ? 0 : length;
        break;
      }
      case spec::kTFlush:
        op = BlkOp::kFlush;  // sector and data ignored (choice list)
        break;
      case spec::kTGetId:
        op = BlkOp::kGetId;
        length = choice::get_id_bytes(in_data);
        views = reference_views(mem, chain.writable(), 0, length);
        if (views.size() > limits.max_segments) breaks(spec::kSIoErr);
        written = length;
        break;
      case spec::kTDiscard:
      case spec::kTWriteZeroes: {
        const bool discard = type == spec::kTDiscard;
        op = discard ? BlkOp::kDiscard : BlkOp::kWriteZeroes;
        if (!(discard ? limits.discard : limits.write_zeroes)) {
          breaks(choice::kRangeNotNegotiatedStatus);
        }
        if (choice::kRangeRequestsAreWrites && limits.read_only) breaks(spec::kSIoErr);
        // "The data used for discard ... or write zeroes commands consists of one or more
        // segments", at most max_*_seg of them (we offer choice::kMaxRangeSegments).
        const uint64_t segments = payload / spec::kSegSize;
        if (payload % spec::kSegSize != 0 || segments == 0 ||
            segments > choice::kMaxRangeSegments) {
          breaks(choice::kBadRangeSegmentsStatus);
          break;
        }
        for (uint64_t i = 0; i < segments; ++i) {
          const uint64_t seg = spec::kReqHeader + i * spec::kSegSize;
          const uint64_t seg_sector = chain_le(mem, chain.readable(), seg + spec::kSegSector, 8);
          const auto seg_sectors =
              static_cast<uint32_t>(chain_le(mem, chain.readable(), seg + spec::kSegNumSectors, 4));
          const auto flags =
              static_cast<uint32_t>(chain_le(mem, chain.readable(), seg + spec::kSegFlags, 4));
          // 5.2.6.2: UNSUPP "if any unknown flag is set", and for `unmap` on a discard.
          if ((flags & ~spec::kSegUnmap) != 0) breaks(spec::kSUnsupp);
          if (discard && (flags & spec::kSegUnmap) != 0) breaks(spec::kSUnsupp);
          // 5.2.4: max_*_sectors is the most "for one segment".
          if (seg_sectors > (discard ? limits.max_discard_sectors
                                     : limits.max_write_zeroes_sectors)) {
            breaks(spec::kSIoErr);
          }
          if (past_capacity(seg_sector, uint64_t{seg_sectors} * spec::kSector,
                            limits.capacity_bytes)) {
            breaks(spec::kSIoErr);
          }
          if (i == 0) {
            // BlkRequest carries one range, which the choice of one segment allows.
            static_assert(choice::kMaxRangeSegments == 1);
            offset = seg_sector * spec::kSector;
            length = uint64_t{seg_sectors} * spec::kSector;
            unmap = (flags & spec::kSegUnmap) != 0;
          }
        }
        break;
      }
      default:
        breaks(spec::kSUnsupp);  // not a type this device supports (choice list)
        break;
    }
  }

  if (!result) {
    // Some broken rule asks for exactly this status.
    FUZZ_CHECK(broken != 0);
    FUZZ_CHECK((broken & (1u << result.error().code)) != 0);
    FUZZ_STAT(fail[result.error().code]++);
    return exp_status != nullptr ? 1 : 0;  // a failure writes only its status byte (choice list)
  }
  FUZZ_STAT(ok[static_cast<int>(req.op)]++);
  FUZZ_CHECK(broken == 0);
  FUZZ_CHECK(req.op == op);
  FUZZ_CHECK(req.offset == offset && req.length == length);
  // Used length: the data the device writes plus the status byte (choice list, 2.7.8).
  FUZZ_CHECK(req.used_len_ok == written + 1);
  FUZZ_CHECK(req.unmap == unmap);
  FUZZ_CHECK(same_views(req.iov, views));
  return req.used_len_ok;
}

// ---------------------------------------------------------------------------------------------
// The device side: pop, parse, check, perform, complete.

struct Device {
  FakeGuestMemory& mem;
  SplitQueue& queue;
  const QueueConfig& config;
  const BlkLimits& limits;
  BlkRequest req;  // reused across requests, like the device does
  uint8_t action;
  uint32_t sink = 0;
  // The model's own count of chains taken from the available ring (2.7.6).
  uint16_t model_avail = 0;
  // Structured mode: the buffers the driver side built for a head, while nothing has
  // overwritten their descriptors (see run_structured).
  std::vector<std::optional<std::vector<Buffer>>> built{};

  uint8_t next_action() {
    action = static_cast<uint8_t>(action * 33 + 17);
    return action;
  }

  // The head of the next chain: ring[model_avail % size] of the available ring (2.7.6).
  uint16_t take_model_head() {
    const uint64_t slot = model_avail & (config.size - 1);
    ++model_avail;
    return static_cast<uint16_t>(ram_le(mem, config.avail_ring + spec::kAvailRing + 2 * slot, 2));
  }

  void check_used_elem(uint16_t head, uint32_t len) {
    const uint16_t idx = queue.next_used();
    const uint64_t elem =
        config.used_ring + spec::kUsedRing + spec::kUsedElem * ((idx - 1) & (config.size - 1));
    FUZZ_CHECK(ram_le(mem, config.used_ring + spec::kUsedIdx, 2) == idx);
    FUZZ_CHECK(ram_le(mem, elem, 4) == head);
    FUZZ_CHECK(ram_le(mem, elem + 4, 4) == len);
  }

  void complete(const DescriptorChain& chain, uint16_t head) {
    // The model's view of the chain: its own walk of the descriptors, which the queue's walk
    // and (when known) the driver side's buffers must agree with.
    const ModelChain model = model_walk(mem, config.desc_table, config.size, head);
    FUZZ_CHECK(same_pieces(model, chain.buffers));
    if (head < built.size() && built[head]) {
      FUZZ_CHECK(same_pieces(model, *built[head]));
      FUZZ_STAT(built_checked++);
    }
    if (head < built.size()) built[head].reset();
    auto result = parse_blk_request(mem, chain, limits, req);
    const uint32_t used_len = check_parse(mem, model, limits, result, req);
    if (result) {
      // Perform the request through the host pointers the parser handed out.
      for (const iovec& v : req.iov) {
        auto* p = static_cast<uint8_t*>(v.iov_base);
        if (req.op == BlkOp::kWrite) {
          for (size_t i = 0; i < v.iov_len; i += 64) sink += p[i];
          sink += p[v.iov_len - 1];
        } else {
          std::memset(p, 0x5A, v.iov_len);
        }
      }
      *req.status = spec::kSOk;
    } else if (result.error().status != nullptr) {
      *result.error().status = result.error().code;
    }
    queue.add_used(chain.head, used_len);
    check_used_elem(chain.head, used_len);
  }

  // Pops and completes until the queue is empty or broken, at most `limit` chains.
  // False when the ring is broken.
  bool drain(unsigned limit) {
    for (unsigned i = 0; i < limit; ++i) {
      const uint8_t a = next_action();
      if (a & 0x10) queue.disable_notification();
      auto popped = queue.pop();
      if (!popped) {
        FUZZ_CHECK(!queue.pop().has_value());  // a broken ring stays broken
        return false;
      }
      if (!popped->has_value()) {
        if (queue.enable_notification()) continue;  // raced with the "guest": pop again
        return true;
      }
      ChainResult chain = std::move(**popped);
      if (a & 0x20) {
        // Give the chain back (backend full) and take it again: the same chain.
        queue.undo_pop();
        auto again = queue.pop();
        FUZZ_CHECK(again && again->has_value());
        ChainResult second = std::move(**again);
        FUZZ_CHECK(chain.has_value() == second.has_value());
        if (chain && second) {
          FUZZ_CHECK(chain->head == second->head && chain->buffers == second->buffers);
        }
        chain = std::move(second);
      }
      const uint16_t head = take_model_head();
      if (chain) {
        FUZZ_CHECK(chain->head == head);
        complete(*chain, head);
      } else {
        FUZZ_CHECK(chain.error().head == head);
        if (head < built.size()) built[head].reset();
        FUZZ_STAT(chain_errors++);
        queue.add_used(chain.error().head, 0);
        check_used_elem(chain.error().head, 0);
      }
      if (a & 0x40) (void)queue.needs_notification();
    }
    return true;
  }
};

BlkLimits read_limits(Reader& in, uint8_t mode) {
  BlkLimits limits;
  const uint8_t segs = in.u8();
  const uint32_t cap = in.u32();
  limits.max_discard_sectors = in.u32();
  limits.max_write_zeroes_sectors = in.u32();
  limits.read_only = (mode & 8) != 0;
  limits.discard = (mode & 16) != 0;
  limits.write_zeroes = (mode & 32) != 0;
  limits.max_segments = (mode & 64) != 0 ? 1 + segs % 4 : 1024;
  const uint64_t sectors = (mode & 128) != 0 ? (UINT64_MAX / spec::kSector) - cap : cap;
  limits.capacity_bytes = sectors * spec::kSector;
  return limits;
}

// ---------------------------------------------------------------------------------------------
// Structured mode: requests built like a driver builds them.

uint64_t pick_sector(Reader& in, uint64_t cap_sectors) {
  const uint8_t how = in.u8();
  switch (how % 4) {
    case 0: return in.u8();
    case 1: return cap_sectors - in.u8() % 16;   // at or near the end (wraps for tiny disks)
    case 2: return cap_sectors + in.u8() % 4;    // just past the end
    default: return in.u64();
  }
}

void put_le(std::vector<uint8_t>& v, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) v.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

// Splits `total` bytes into 1..4 pieces at fuzzed cut points (zero-length pieces allowed).
std::vector<uint32_t> split(Reader& in, uint64_t total) {
  const unsigned pieces = 1 + in.u8() % 4;
  std::vector<uint64_t> cuts;
  for (unsigned i = 1; i < pieces; ++i) cuts.push_back(in.u16() % (total + 1));
  std::sort(cuts.begin(), cuts.end());
  std::vector<uint32_t> lens;
  uint64_t prev = 0;
  for (uint64_t c : cuts) {
    lens.push_back(static_cast<uint32_t>(c - prev));
    prev = c;
  }
  lens.push_back(static_cast<uint32_t>(total - prev));
  return lens;
}

void run_structured(Reader& in, uint8_t mode, uint16_t qsize, uint64_t base,
                    const BlkLimits& limits, uint8_t seed) {
  FakeGuestMemory& mem = fresh_ram(kStructuredRam, base);
  MockSplitQueue driver(mem, qsize, base);
  const QueueConfig config = driver.config();
  const uint64_t features = ((mode & 1) ? spec::kFIndirectDesc : 0) |
                            ((mode & 2) ? spec::kFEventIdx : 0);
  auto created = SplitQueue::create(mem, config, features);
  FUZZ_CHECK(created.has_value());
  SplitQueue& queue = *created;
  Device dev{mem, queue, config, limits, {}, seed};
  dev.built.resize(qsize);

  const uint64_t data_start = (config.used_ring + 6 + 8ull * qsize + 63) & ~uint64_t{63};
  const uint64_t ram_end = base + kStructuredRam;
  uint64_t next_data = data_start;
  uint16_t next_desc = 0;
  unsigned outstanding = 0;
  const uint64_t cap_sectors = limits.capacity_bytes / spec::kSector;
  // Whether the buffers built for the outstanding requests are still what their descriptors
  // say: not once a write may have hit a descriptor or an indirect table (a stray byte, an
  // aliased buffer, memory reused while requests are outstanding, more descriptors than the
  // table holds). Then the model only has its own walk of what is in memory.
  bool overwritten = false;
  unsigned batch_descs = 0;  // descriptors taken since the last drain

  auto alloc = [&](uint64_t len, unsigned gap) -> uint64_t {
    uint64_t at = next_data + gap;
    if (at + len > ram_end) {
      at = data_start;  // reuse (earlier requests may still be outstanding)
      overwritten = true;
    }
    if (at + len > ram_end) return ram_end - std::min(len, ram_end - data_start);
    next_data = at + len;
    return at;
  };
  auto forget_built = [&] {
    for (auto& b : dev.built) b.reset();
  };

  for (unsigned r = 0; r < kMaxRequests && !in.empty(); ++r) {
    const uint8_t op = in.u8();
    const uint8_t ctl = in.u8();

    // Header and payload (device-readable), data and status (device-writable).
    std::vector<uint8_t> readable;
    uint32_t type = 0;
    switch (op & 7) {
      case 0: type = spec::kTIn; break;
      case 1: type = spec::kTOut; break;
      case 2: type = spec::kTFlush; break;
      case 3: type = spec::kTGetId; break;
      case 4: type = spec::kTDiscard; break;
      case 5: type = spec::kTWriteZeroes; break;
      case 6: type = (in.u8() & 1) ? spec::kTGetLifetime : spec::kTSecureErase; break;
      default: type = in.u32(); break;
    }
    put_le(readable, type, 4);
    put_le(readable, (op & 0x80) ? in.u32() : 0, 4);  // reserved
    put_le(readable, pick_sector(in, cap_sectors), 8);
    uint64_t writable = 1;  // the status byte
    const uint64_t data_len = (in.u8() % 9) * spec::kSector + ((op & 0x40) ? in.u8() % 3 : 0);
    switch (type) {
      case spec::kTIn: writable += data_len; break;
      case spec::kTOut: readable.resize(readable.size() + data_len, 0xC3); break;
      case spec::kTGetId: writable += in.u8() % 48; break;
      case spec::kTDiscard:
      case spec::kTWriteZeroes: {
        const uint8_t n = in.u8();
        const unsigned segments = n % 4 == 0 ? 0 : n % 4 == 3 ? 2 : 1;
        for (unsigned s = 0; s < segments; ++s) {
          put_le(readable, pick_sector(in, cap_sectors), 8);
          const uint8_t how = in.u8();
          const uint32_t count = how % 3 == 0   ? in.u8()
                                 : how % 3 == 1 ? (how & 8 ? limits.max_discard_sectors
                                                           : limits.max_write_zeroes_sectors)
                                                : in.u32();
          put_le(readable, count, 4);
          const uint8_t f = in.u8();
          put_le(readable, f % 4 == 3 ? in.u32() : f % 4 == 2 ? 1 : 0, 4);
        }
        break;
      }
      default: break;
    }
    if (op & 0x40) {
      // Framing mistakes: a short header, extra readable bytes, no status, extra writable.
      const uint8_t how = in.u8();
      switch (how % 4) {
        case 0: readable.resize(readable.size() - std::min<size_t>(readable.size(), how % 17)); break;
        case 1: readable.resize(readable.size() + how % 7, 0xEE); break;
        case 2: writable = 0; break;
        default: writable += how % 9; break;
      }
    }

    // Split both parts across descriptors and place the pieces in guest memory.
    const bool alias = (op & 0x20) != 0;
    std::vector<Buffer> buffers;
    size_t consumed = 0;
    auto place = [&](uint32_t len) -> uint64_t {
      if (alias && (in.u8() & 1)) {
        overwritten = true;
        return base + in.u16() % (kStructuredRam - len + 1);
      }
      return alloc(len, in.u8() % 8);
    };
    for (uint32_t len : split(in, readable.size())) {
      const uint64_t gpa = place(len);
      (void)mem.write(gpa, std::span<const uint8_t>(readable).subspan(consumed, len));
      consumed += len;
      buffers.push_back(Buffer{gpa, len, false});
    }
    for (uint32_t len : split(in, writable)) {
      const uint64_t gpa = place(len);
      auto view = mem.slice(gpa, len);
      if (view) std::memset(view->data(), 0xA5, len);  // stale contents the device overwrites
      buffers.push_back(Buffer{gpa, len, true});
    }
    if (ctl & 0x80) {
      // A writable piece in the middle of the readable ones: a framing violation.
      std::swap(buffers.front(), buffers.back());
    }

    // Descriptors: direct, or a direct prefix then an indirect table.
    const uint16_t head = next_desc;
    auto take_desc = [&] {
      const uint16_t d = next_desc;
      next_desc = static_cast<uint16_t>((next_desc + 1) % qsize);
      return d;
    };
    size_t direct = buffers.size();
    const bool indirect = (op & 0x18) == 0x18 || ((op & 0x18) == 0x08 && (mode & 1));
    if (indirect) direct = std::min<size_t>(buffers.size(), in.u8() % 3);
    for (size_t i = 0; i < direct; ++i) {
      const uint16_t d = take_desc();
      const bool last = i + 1 == buffers.size() && !indirect;
      uint16_t flags = buffers[i].writable ? spec::kDescWrite : 0;
      if (!last) flags |= spec::kDescNext;
      driver.write_desc(d, {buffers[i].gpa, buffers[i].len, flags,
                            static_cast<uint16_t>(last ? 0 : next_desc)});
    }
    if (indirect) {
      std::vector<Buffer> rest(buffers.begin() + static_cast<ptrdiff_t>(direct), buffers.end());
      const uint64_t table = (alloc(16 * rest.size() + 15, 0) + 15) & ~uint64_t{15};
      driver.write_indirect_table(table, rest);
      driver.write_desc(take_desc(), {table, static_cast<uint32_t>(16 * rest.size()),
                                      spec::kDescIndirect, 0});
    }
    batch_descs += static_cast<unsigned>(direct) + (indirect ? 1 : 0);

    // Driver-side ring actions.
    driver.set_avail_flags((ctl & 0x01) ? spec::kAvailNoInterrupt : 0);
    if (ctl & 0x02) driver.set_used_event(static_cast<uint16_t>(queue.next_used() + in.u8() % 4));
    if (ctl & 0x04) {
      // A stray byte anywhere in RAM (rings included).
      const uint16_t at = in.u16();
      (void)mem.write_obj<uint8_t>(base + at % kStructuredRam, in.u8());
      overwritten = true;
    }
    if (overwritten || batch_descs > qsize) {
      forget_built();
    } else {
      dev.built[head] = buffers;
    }
    driver.publish(head);
    ++outstanding;

    // Complete now, or leave up to four requests outstanding.
    if ((ctl & 0x30) == 0 || outstanding >= 4 || in.empty()) {
      if (!dev.drain(8)) return;
      outstanding = 0;
      next_data = data_start;
      forget_built();
      overwritten = false;
      batch_descs = 0;
      if (ctl & 0x08) (void)queue.needs_notification();
    }
  }
  (void)dev.drain(8);
  (void)queue.needs_notification();
  auto restored = SplitQueue::restore(mem, queue.save());
  FUZZ_CHECK(restored.has_value() && restored->save() == queue.save());
  FUZZ_CHECK(dev.sink != 1);  // keep the reads
}

// ---------------------------------------------------------------------------------------------
// Raw mode: the fuzzer owns all of guest RAM.

void run_raw(Reader& in, uint8_t mode, uint16_t qsize, uint64_t base, const BlkLimits& limits,
             uint8_t seed) {
  const uint8_t place = in.u8();
  FakeGuestMemory& mem = fresh_ram(kRawRam, base);
  const auto image = in.rest();
  std::memcpy(mem.host(base), image.data(), std::min<size_t>(image.size(), kRawRam));

  QueueConfig config;
  config.size = qsize;
  config.ready = true;
  config.desc_table = base + (place & 15) * 0x200ull;
  config.avail_ring = config.desc_table + 16ull * qsize;
  config.used_ring = (config.avail_ring + 6 + 2ull * qsize + 3) & ~uint64_t{3};
  if (place & 16) {
    for (uint16_t i = 0; i < qsize; ++i) {
      auto d = mem.read_obj<VirtqDescriptor>(config.desc_table + 16ull * i);
      if (!d) break;
      d->addr = base + d->addr % kRawRam;
      d->len %= 1024;
      d->next %= qsize;
      if ((d->flags & spec::kDescIndirect) != 0) {
        d->len = static_cast<uint32_t>(16 * (1 + d->len % qsize));
        d->addr &= ~uint64_t{15};
      }
      (void)mem.write_obj(config.desc_table + 16ull * i, *d);
    }
  }
  const uint64_t features = ((mode & 1) ? spec::kFIndirectDesc : 0) |
                            ((mode & 2) ? spec::kFEventIdx : 0);
  auto created = SplitQueue::create(mem, config, features);
  if (!created) return;  // rings past the end of RAM: refused, fine
  Device dev{mem, *created, config, limits, {}, seed};
  (void)dev.drain(kMaxRawPops);
  (void)created->needs_notification();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader in(data, size);
  const uint8_t mode = in.u8();
  const uint8_t qbyte = in.u8();
  const auto qsize = static_cast<uint16_t>(1u << ((qbyte & 0x7f) % 9));
  const uint64_t base = (qbyte & 0x80) ? 0x100000 : 0;
  const BlkLimits limits = read_limits(in, mode);
  const uint8_t seed = in.u8();
  if (mode & 4) {
    run_raw(in, mode, qsize, base, limits, seed);
  } else {
    run_structured(in, mode, qsize, base, limits, seed);
  }
  return 0;
}
