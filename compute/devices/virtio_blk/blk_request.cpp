#include "compute/devices/virtio_blk/blk_request.hpp"

#include "base/endian.hpp"
#include "compute/devices/virtio_blk/blk_spec.hpp"

namespace hcnode::compute::virtio::blk {

const char* to_string(BlkOp op) {
  switch (op) {
    case BlkOp::kRead: return "read";
    case BlkOp::kWrite: return "write";
    case BlkOp::kFlush: return "flush";
    case BlkOp::kGetId: return "get-id";
    case BlkOp::kDiscard: return "discard";
    case BlkOp::kWriteZeroes: return "write-zeroes";
  }
  return "unknown";
}

namespace {

// Copies bytes [offset, offset + out.size()) of the concatenation of `buffers` into `out`.
// False if the buffers hold fewer bytes. One copy: the guest may change the source afterwards.
bool gather(const GuestMemory& memory, std::span<const Buffer> buffers, uint64_t offset,
            std::span<uint8_t> out) {
  size_t done = 0;
  for (const Buffer& b : buffers) {
    if (done == out.size()) break;
    if (offset >= b.len) {
      offset -= b.len;
      continue;
    }
    const uint64_t take = std::min<uint64_t>(b.len - offset, out.size() - done);
    if (!memory.read(b.gpa + offset, out.subspan(done, take))) return false;
    done += take;
    offset = 0;
  }
  return done == out.size();
}

// Appends host views of bytes [offset, offset + len) of the concatenation of `buffers` to iov.
// False if the buffers hold fewer bytes or more than max_segments views would be needed.
bool append_views(const GuestMemory& memory, std::span<const Buffer> buffers, uint64_t offset,
                  uint64_t len, size_t max_segments, std::vector<iovec>& iov) {
  for (const Buffer& b : buffers) {
    if (len == 0) break;
    if (offset >= b.len) {
      offset -= b.len;
      continue;
    }
    const uint64_t take = std::min<uint64_t>(b.len - offset, len);
    if (take > 0) {
      if (iov.size() >= max_segments) return false;
      auto view = memory.slice(b.gpa + offset, take);
      if (!view) return false;
      // SAFETY: a host view of guest RAM (checked by slice); the backend reads or writes it
      // while the guest may touch it too — the guest's problem, never the VMM's memory.
      iov.push_back(iovec{view->data(), view->size()});
    }
    len -= take;
    offset = 0;
  }
  return len == 0;
}

// The status byte: the last byte of the writable part (5.2.6).
uint8_t* find_status(const GuestMemory& memory, const DescriptorChain& chain) {
  if (chain.writable_bytes == 0) return nullptr;
  uint64_t remaining = chain.writable_bytes - 1;
  for (const Buffer& b : chain.writable()) {
    if (remaining < b.len) {
      auto view = memory.slice(b.gpa + remaining, 1);
      return view ? view->data() : nullptr;
    }
    remaining -= b.len;
  }
  return nullptr;
}

// Is [offset, offset + len) inside a disk of `capacity` bytes? Overflow-safe.
bool in_range(uint64_t offset, uint64_t len, uint64_t capacity) {
  return offset <= capacity && len <= capacity - offset;
}

}  // namespace

ParseResult parse_blk_request(const GuestMemory& memory, const DescriptorChain& chain,
                              const BlkLimits& limits, BlkRequest& out) {
  out.iov.clear();
  out.offset = 0;
  out.length = 0;
  out.unmap = false;
  out.used_len_ok = 1;
  out.status = find_status(memory, chain);
  auto failure = [&](uint8_t code, std::string_view reason) {
    return std::unexpected(BlkFailure{out.status, code, reason});
  };
  if (out.status == nullptr) {
    return failure(kStatusIoErr, "no device-writable status byte");
  }

  uint8_t header[kHeaderSize];
  if (chain.readable_bytes < kHeaderSize || !gather(memory, chain.readable(), 0, header)) {
    return failure(kStatusIoErr, "request header shorter than 16 bytes");
  }
  const auto type = load_le32(header);
  const auto sector = load_le64(header + 8);
  const uint64_t payload = chain.readable_bytes - kHeaderSize;  // OUT data or segments
  const uint64_t in_bytes = chain.writable_bytes - 1;             // IN data before the status

  switch (type) {
    case kTypeIn:
    case kTypeOut: {
      const bool write = type == kTypeOut;
      out.op = write ? BlkOp::kWrite : BlkOp::kRead;
      if (write && limits.read_only) {
        return failure(kStatusIoErr, "write to a read-only disk");
      }
      const uint64_t len = write ? payload : in_bytes;
      if (len % kSectorSize != 0) {
        return failure(kStatusIoErr, "data length not a multiple of 512");
      }
      if (sector > limits.capacity_bytes / kSectorSize ||
          !in_range(sector * kSectorSize, len, limits.capacity_bytes)) {
        return failure(kStatusIoErr, "request past the end of the disk");
      }
      if (len > choice::kMaxDataBytes) {
        return failure(kStatusIoErr, "request too long");
      }
      out.offset = sector * kSectorSize;
      out.length = len;
      const bool ok = write ? append_views(memory, chain.readable(), kHeaderSize, len,
                                           limits.max_segments, out.iov)
                            : append_views(memory, chain.writable(), 0, len, limits.max_segments,
                                           out.iov);
      if (!ok) {
        return failure(kStatusIoErr, "too many data segments");
      }
      out.used_len_ok = write ? 1 : static_cast<uint32_t>(len + 1);
      return {};
    }
    case kTypeFlush:
      out.op = BlkOp::kFlush;
      return {};
    case kTypeGetId: {
      out.op = BlkOp::kGetId;
      const uint64_t len = choice::get_id_bytes(in_bytes);
      if (!append_views(memory, chain.writable(), 0, len, limits.max_segments, out.iov)) {
        return failure(kStatusIoErr, "too many data segments");
      }
      out.length = len;
      out.used_len_ok = static_cast<uint32_t>(len + 1);
      return {};
    }
    case kTypeDiscard:
    case kTypeWriteZeroes: {
      const bool discard = type == kTypeDiscard;
      out.op = discard ? BlkOp::kDiscard : BlkOp::kWriteZeroes;
      if (discard ? !limits.discard : !limits.write_zeroes) {
        return failure(choice::kRangeNotNegotiatedStatus, "discard/write-zeroes not negotiated");
      }
      if (choice::kRangeRequestsAreWrites && limits.read_only) {
        return failure(kStatusIoErr, "discard/write-zeroes on a read-only disk");
      }
      // We offer max_discard_seg = max_write_zeroes_seg = choice::kMaxRangeSegments = 1.
      static_assert(choice::kMaxRangeSegments == 1, "BlkRequest carries one range");
      if (payload != kRangeSegmentSize) {
        return failure(choice::kBadRangeSegmentsStatus,
                       "not exactly one discard/write-zeroes segment");
      }
      uint8_t seg[kRangeSegmentSize];
      if (!gather(memory, chain.readable(), kHeaderSize, seg)) {
        return failure(kStatusIoErr, "unreadable segment");
      }
      const auto seg_sector = load_le64(seg);
      const auto seg_sectors = load_le32(seg + 8);
      const auto flags = load_le32(seg + 12);
      // 5.2.6.2: UNSUPP for unknown flags, and for UNMAP on a discard.
      if ((flags & ~kRangeFlagUnmap) != 0 || (discard && (flags & kRangeFlagUnmap) != 0)) {
        return failure(kStatusUnsupp, "unsupported discard/write-zeroes flags");
      }
      const uint32_t max = discard ? limits.max_discard_sectors : limits.max_write_zeroes_sectors;
      if (seg_sectors > max) {
        return failure(kStatusIoErr, "discard/write-zeroes range larger than advertised");
      }
      if (seg_sector > limits.capacity_bytes / kSectorSize ||
          !in_range(seg_sector * kSectorSize, uint64_t{seg_sectors} * kSectorSize,
                    limits.capacity_bytes)) {
        return failure(kStatusIoErr, "discard/write-zeroes past the end of the disk");
      }
      out.offset = seg_sector * kSectorSize;
      out.length = uint64_t{seg_sectors} * kSectorSize;
      out.unmap = (flags & kRangeFlagUnmap) != 0;
      return {};
    }
    default:
      return failure(kStatusUnsupp, "unknown request type");
  }
}

}  // namespace hcnode::compute::virtio::blk
