#include "compute/virtio/descriptor_chain.hpp"

#include <cstring>

#include "compute/virtio/constants.hpp"

namespace hcnode::compute::virtio {

std::string_view to_string(ChainErrorKind kind) {
  switch (kind) {
    case ChainErrorKind::kIndexOutOfRange:
      return "descriptor index out of range";
    case ChainErrorKind::kTooManyDescriptors:
      return "descriptor chain longer than its table (loop)";
    case ChainErrorKind::kBufferOutsideRam:
      return "buffer outside guest RAM";
    case ChainErrorKind::kReadableAfterWritable:
      return "device-readable descriptor after a device-writable one";
    case ChainErrorKind::kIndirectNotNegotiated:
      return "indirect descriptor without VIRTIO_F_INDIRECT_DESC";
    case ChainErrorKind::kIndirectBadLength:
      return "indirect table length invalid";
    case ChainErrorKind::kIndirectOutsideRam:
      return "indirect table outside guest RAM";
    case ChainErrorKind::kNestedIndirect:
      return "nested indirect descriptor";
    case ChainErrorKind::kIndirectWithNext:
      return "indirect descriptor with NEXT";
    case ChainErrorKind::kChainTooLong:
      return "descriptor chain longer than 2^32 bytes";
  }
  return "unknown chain error";
}

namespace {

VirtqDescriptor load_descriptor(std::span<const uint8_t> table, uint32_t index) {
  VirtqDescriptor d;
  // Copy once: the guest may rewrite the table concurrently; we validate only this copy.
  std::memcpy(&d, table.data() + size_t{index} * sizeof(VirtqDescriptor), sizeof d);
  return d;
}

}  // namespace

ChainResult walk_chain(const GuestMemory& memory, std::span<const uint8_t> desc_table,
                       uint16_t queue_size, uint16_t head, bool indirect_allowed) {
  auto error = [head](ChainErrorKind kind) { return std::unexpected(ChainError{head, kind}); };

  DescriptorChain chain;
  chain.head = head;

  std::span<const uint8_t> table = desc_table;
  uint32_t table_entries = queue_size;
  uint32_t index = head;
  uint32_t hops = 0;  // descriptors visited in the current table
  bool in_indirect = false;
  bool seen_writable = false;
  uint64_t total = 0;

  for (;;) {
    if (index >= table_entries) {
      return error(ChainErrorKind::kIndexOutOfRange);
    }
    if (++hops > table_entries) {
      return error(ChainErrorKind::kTooManyDescriptors);
    }
    const VirtqDescriptor d = load_descriptor(table, index);

    if ((d.flags & kDescFlagIndirect) != 0) {
      if (!indirect_allowed) {
        return error(ChainErrorKind::kIndirectNotNegotiated);
      }
      if (in_indirect) {
        return error(ChainErrorKind::kNestedIndirect);
      }
      if ((d.flags & kDescFlagNext) != 0) {
        return error(ChainErrorKind::kIndirectWithNext);
      }
      if (d.len == 0 || d.len % sizeof(VirtqDescriptor) != 0 ||
          d.len / sizeof(VirtqDescriptor) > queue_size) {
        return error(ChainErrorKind::kIndirectBadLength);
      }
      auto indirect = memory.slice(d.addr, d.len);
      if (!indirect) {
        return error(ChainErrorKind::kIndirectOutsideRam);
      }
      // The WRITE flag of the descriptor pointing at the table is ignored (2.7.5.3.2).
      table = *indirect;
      table_entries = d.len / sizeof(VirtqDescriptor);
      index = 0;
      hops = 0;
      in_indirect = true;
      continue;
    }

    const bool writable = (d.flags & kDescFlagWrite) != 0;
    if (!writable && seen_writable) {
      return error(ChainErrorKind::kReadableAfterWritable);
    }
    if (!memory.slice(d.addr, d.len)) {
      return error(ChainErrorKind::kBufferOutsideRam);
    }
    total += d.len;
    if (total > (uint64_t{1} << 32)) {
      return error(ChainErrorKind::kChainTooLong);
    }
    chain.buffers.push_back(Buffer{d.addr, d.len, writable});
    if (writable) {
      seen_writable = true;
      chain.writable_bytes += d.len;
    } else {
      ++chain.readable_count;
      chain.readable_bytes += d.len;
    }

    if ((d.flags & kDescFlagNext) == 0) {
      return chain;
    }
    index = d.next;
  }
}

}  // namespace hcnode::compute::virtio
