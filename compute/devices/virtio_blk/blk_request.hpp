// Parsing of virtio-blk requests (virtio 1.2 5.2.6): a validated descriptor chain in, either a
// request ready for the backend or a failure with the status to report, out. Pure code over
// GuestMemory: unit-tested with a fake guest memory and fuzzed (tests/fuzz/virtio_blk_fuzz.cpp).
//
// Framing (5.2.6): the device-readable part starts with the 16-byte header {le32 type,
// le32 reserved, le64 sector}; OUT data or DISCARD/WRITE_ZEROES segments follow it. The
// device-writable part ends with the 1-byte status ("the final byte of the last writable
// buffer"); IN and GET_ID data precede it. Drivers may split or merge these pieces across
// descriptors any way they like (2.7.4 "Message Framing"), so nothing here assumes one
// descriptor per piece: the header and segments are gathered across buffers.
//
// What the guest controls and how each case ends:
//   no writable byte at all            no status to write: complete with used length 0
//   readable part shorter than header  IOERR
//   unknown type                       UNSUPP (5.2.6.2 "MUST set the status to UNSUPP")
//   IN/OUT length not a multiple of 512, or the range past the capacity (overflow-checked)
//                                      IOERR
//   OUT / DISCARD / WRITE_ZEROES on a read-only disk
//                                      IOERR (5.2.6.2: "MUST set the status byte to
//                                      VIRTIO_BLK_S_IOERR for a write request if ... RO")
//   DISCARD / WRITE_ZEROES not negotiated                          UNSUPP
//   segment count not 1 (we offer max_*_seg = 1), unknown flags, UNMAP on a discard
//                                      UNSUPP (5.2.6.2)
//   segment range past the capacity or over max_*_sectors         IOERR
// Every host pointer in the result comes from GuestMemory::slice, so it lies inside guest RAM.
// The status pointer is never inside a buffer the backend will write (it is the last writable
// byte and the IN data stops before it).
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <expected>
#include <string_view>
#include <vector>

#include "compute/memory/guest_memory.hpp"
#include "compute/virtio/descriptor_chain.hpp"

namespace hcnode::compute::virtio::blk {

enum class BlkOp : uint8_t { kRead, kWrite, kFlush, kGetId, kDiscard, kWriteZeroes };
const char* to_string(BlkOp op);

// What the device exposes; the parser enforces it.
struct BlkLimits {
  uint64_t capacity_bytes = 0;  // a multiple of 512
  bool read_only = false;
  bool discard = false;          // VIRTIO_BLK_F_DISCARD negotiated
  bool write_zeroes = false;     // VIRTIO_BLK_F_WRITE_ZEROES negotiated
  uint32_t max_discard_sectors = 0;
  uint32_t max_write_zeroes_sectors = 0;
  size_t max_segments = 1024;    // data iovecs per request (backend's limit)
};

struct BlkRequest {
  BlkOp op = BlkOp::kRead;
  uint64_t offset = 0;  // bytes
  uint64_t length = 0;  // bytes of data (IN/OUT/GET_ID) or of the range (DISCARD/WRITE_ZEROES)
  bool unmap = false;   // WRITE_ZEROES with VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP
  std::vector<iovec> iov;  // host views of the data buffers (IN, OUT, GET_ID)
  // SAFETY: the status byte inside guest RAM; the guest may read or write it at any time.
  uint8_t* status = nullptr;
  // Bytes the device writes into the writable part when it succeeds (5.2.6: data + status).
  uint32_t used_len_ok = 1;
};

struct BlkFailure {
  uint8_t* status = nullptr;  // nullptr: the chain has no status byte
  uint8_t code = 0;           // kStatusIoErr or kStatusUnsupp
  std::string_view reason;    // for the log (static strings)
};

using ParseResult = std::expected<void, BlkFailure>;

// Parses `chain` (already validated by walk_chain: every buffer inside guest RAM, readable
// before writable) into `out`. `out` is overwritten, its iov vector reused so that the data
// path does not allocate per request.
ParseResult parse_blk_request(const GuestMemory& memory, const DescriptorChain& chain,
                              const BlkLimits& limits, BlkRequest& out);

}  // namespace hcnode::compute::virtio::blk
