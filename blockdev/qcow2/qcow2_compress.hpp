// Compressed clusters of qcow2 (spec docs/interop/qcow2.txt, "Compressed Clusters Descriptor"
// and the header's "compression_type" field, byte 104). Pure code over bytes: no I/O, so the
// descriptor parsing and the bounded decompression are unit-tested and fuzzed on their own.
//
// Descriptor (an L2 entry with bit 62 set), x = 62 - (cluster_bits - 8):
//   bits 0 .. x-1   host offset of the compressed data, in bytes (not aligned to anything);
//                   bits beyond 55 must be 0 (spec: "If cluster_bits is small enough that this
//                   field includes bits beyond 55, those upper bits must be set to 0").
//   bits x .. 61    number of ADDITIONAL 512-byte sectors after the one holding the offset.
// So the data lies in [offset, (offset & ~511) + (sectors + 1) * 512): at most 2^(cluster_bits
// - 8) sectors = two clusters, whatever the entry says (the field has cluster_bits - 8 bits).
// The data may end anywhere in that range; another compressed cluster may begin in its last
// sector.
//
// Decompression (hcnode's decision, spec: "the compressed data does not necessarily occupy all
// of the bytes in the final sector; rather, decompression stops when it has produced a cluster
// of data"): a compressed cluster must decompress to a full cluster. Output that stops short
// of a cluster (the stream ends, or the bytes in the range run out, as with a range past the
// end of the file) is an error (EIO), never padded with zeroes; decoding stops once a cluster
// is produced, so bytes left in the range (the next cluster's start) are never looked at.
// QEMU's reader also fails a short cluster with EIO.
//   deflate (type 0): a raw deflate stream (no zlib header), window 2^12 as QEMU writes it
//                     (zlib inflateInit2 with windowBits -12).
//   zstd (type 1):    a zstd frame; a frame that ends before a full cluster is an error, and
//                     the decoder's window is capped (kZstdWindowLogMax), so a hostile frame
//                     header cannot make it allocate more than a few MiB.
// Memory is bounded by the caller's buffers (at most two clusters in, one out) and the
// decoders' own state.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "base/result.hpp"

namespace hcnode::blockdev::qcow2 {

inline constexpr uint8_t kCompressionDeflate = 0;
inline constexpr uint8_t kCompressionZstd = 1;
// 2^22 = 4 MiB: twice the largest cluster (2 MiB); a frame asking for more is refused.
inline constexpr int kZstdWindowLogMax = 22;

struct CompressedExtent {
  uint64_t offset = 0;  // byte offset of the compressed data in the image file
  uint64_t length = 0;  // bytes from offset to the end of the last sector (an upper bound)
  bool valid = false;   // false: the upper offset bits (beyond 55) are set
};

// The byte range a compressed cluster descriptor (an L2 entry with bit 62) points at.
CompressedExtent compressed_extent(uint64_t l2_entry, uint32_t cluster_bits);

// One decoder of the image's compression type, reused across clusters (one per queue: not
// thread-safe). Move-only owner of the zlib stream or the zstd context.
class Decompressor {
 public:
  // EINVAL for an unknown compression type, ENOMEM if the library cannot set itself up.
  static Result<Decompressor> create(uint8_t compression_type);
  Decompressor(Decompressor&&) noexcept;
  Decompressor& operator=(Decompressor&&) noexcept;
  ~Decompressor();

  // Decompresses `in` into exactly out.size() bytes (one cluster). 0, or -EIO when the data
  // is corrupt or does not produce exactly out.size() bytes (see above).
  int decompress(std::span<const uint8_t> in, std::span<uint8_t> out);

 private:
  struct Impl;
  explicit Decompressor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hcnode::blockdev::qcow2
