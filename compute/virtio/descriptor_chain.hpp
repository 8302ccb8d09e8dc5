// Descriptor chains of a split virtqueue (virtio 1.2 2.7.5) and the walker that turns a chain
// head into a validated list of guest buffers.
//
// Everything here is guest-controlled input. walk_chain() copies each 16-byte descriptor out of
// guest memory once and validates the copy:
//   - every index (main table and indirect table) is in range;
//   - a chain visits at most as many descriptors as its table has entries, so a loop ends in
//     kTooManyDescriptors instead of hanging ("loops in the descriptor chain are forbidden",
//     2.7.5.2);
//   - indirect tables (2.7.5.3): only if VIRTIO_F_INDIRECT_DESC was negotiated, length a
//     non-zero multiple of 16 and at most queue-size entries ("A driver MUST NOT create a
//     descriptor chain longer than the Queue Size"), inside guest RAM, never nested, never
//     combined with NEXT; zero or more direct descriptors may precede the indirect one;
//   - device-readable buffers precede device-writable ones (2.7.4 "Message Framing": the driver
//     MUST place device-writable descriptors after device-readable ones);
//   - each buffer lies inside guest RAM (GuestMemory::slice), and the chain totals at most 2^32
//     bytes (2.7.5.2).
// A violation is a ChainError that names the head, so the device can still complete the request
// (status byte, used length 0) — or give up and set DEVICE_NEEDS_RESET.
#pragma once

#include <cstdint>
#include <expected>
#include <span>
#include <string_view>
#include <vector>

#include "compute/memory/guest_memory.hpp"

namespace hcnode::compute::virtio {

// struct virtq_desc (2.7.5); little-endian like the host.
struct VirtqDescriptor {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
static_assert(sizeof(VirtqDescriptor) == 16);

struct Buffer {
  uint64_t gpa = 0;
  uint32_t len = 0;
  bool writable = false;  // device-writable (VIRTQ_DESC_F_WRITE)
  bool operator==(const Buffer&) const = default;
};

struct DescriptorChain {
  uint16_t head = 0;
  std::vector<Buffer> buffers;  // readable ones first, then writable ones
  size_t readable_count = 0;
  uint64_t readable_bytes = 0;
  uint64_t writable_bytes = 0;

  std::span<const Buffer> readable() const { return {buffers.data(), readable_count}; }
  std::span<const Buffer> writable() const {
    return std::span<const Buffer>(buffers).subspan(readable_count);
  }
};

enum class ChainErrorKind : uint8_t {
  kIndexOutOfRange,         // next (or an indirect index) >= table size
  kTooManyDescriptors,      // more hops than table entries: a loop
  kBufferOutsideRam,        // addr/len not inside guest RAM
  kReadableAfterWritable,   // framing violation (2.7.4)
  kIndirectNotNegotiated,   // INDIRECT without VIRTIO_F_INDIRECT_DESC
  kIndirectBadLength,       // 0, not a multiple of 16, or more than queue-size entries
  kIndirectOutsideRam,      // the indirect table itself is not inside guest RAM
  kNestedIndirect,          // INDIRECT inside an indirect table
  kIndirectWithNext,        // INDIRECT and NEXT in the same descriptor
  kChainTooLong,            // total length above 2^32 bytes
};

std::string_view to_string(ChainErrorKind kind);

struct ChainError {
  uint16_t head = 0;
  ChainErrorKind kind = ChainErrorKind::kIndexOutOfRange;
};

using ChainResult = std::expected<DescriptorChain, ChainError>;

// Walks the chain that starts at `head` (< queue_size) in `desc_table`, the host view of the
// queue's descriptor table (queue_size * 16 bytes, already validated to be guest RAM).
ChainResult walk_chain(const GuestMemory& memory, std::span<const uint8_t> desc_table,
                       uint16_t queue_size, uint16_t head, bool indirect_allowed);

}  // namespace hcnode::compute::virtio
