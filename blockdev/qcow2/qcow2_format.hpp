// qcow2 on-disk format: the header, its extensions and the table entry encodings (qcow2 spec,
// docs/interop/qcow2.txt of QEMU, "version 3"). Pure code over bytes: no I/O here, so every
// parser in this file is unit-tested against hostile input and fuzzed (tests/fuzz).
//
// Layout of an image that format_new_image() writes (cluster size C, 64 KiB by default):
//   cluster 0  header (104 bytes, version 3), header extensions (backing format, feature
//              name table, end), the backing file name right after them
//   cluster 1  refcount table (one cluster: room for C/8 refcount blocks)
//   cluster 2  the first refcount block (16-bit refcounts: covers C/2 clusters)
//   cluster 3  L1 table (as many clusters as the virtual size needs)
// Data clusters and L2 tables are allocated after these, at the end of the file.
//
// All integers on disk are big-endian.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/endian.hpp"
#include "base/result.hpp"

namespace hcnode::blockdev::qcow2 {

inline constexpr uint32_t kMagic = 0x514649fb;  // "QFI\xfb"
inline constexpr uint32_t kDefaultClusterBits = 16;
inline constexpr uint32_t kMinClusterBits = 9;   // spec: 512 bytes .. 2 MiB
inline constexpr uint32_t kMaxClusterBits = 21;
inline constexpr uint32_t kHeaderV3Length = 104;
// The virtual size limit hcnode accepts (QEMU's is 32 MiB short of 2^63; ours keeps the L1
// table under 32 MiB at 512-byte clusters and every offset arithmetic far from overflow).
inline constexpr uint64_t kMaxVirtualSize = uint64_t{1} << 50;  // 1 PiB

// Incompatible feature bits (header offset 72).
inline constexpr uint64_t kIncompatDirty = 1u << 0;
inline constexpr uint64_t kIncompatCorrupt = 1u << 1;
inline constexpr uint64_t kIncompatExternalData = 1u << 2;
inline constexpr uint64_t kIncompatCompression = 1u << 3;  // compression type field present
inline constexpr uint64_t kIncompatExtendedL2 = 1u << 4;
// Compatible feature bits (offset 80).
inline constexpr uint64_t kCompatLazyRefcounts = 1u << 0;
// Autoclear feature bits (offset 88).
inline constexpr uint64_t kAutoclearBitmaps = 1u << 0;
inline constexpr uint64_t kAutoclearRawExternal = 1u << 1;

// L1 / L2 entry bits (spec: "Cluster mapping").
inline constexpr uint64_t kOffsetMask = 0x00fffffffffffe00ULL;  // bits 9-55
inline constexpr uint64_t kEntryCopied = 1ULL << 63;        // refcount is exactly 1
inline constexpr uint64_t kL2Compressed = 1ULL << 62;
inline constexpr uint64_t kL2ZeroFlag = 1ULL << 0;          // reads as zeroes (v3)
inline constexpr uint64_t kL1ReservedMask = 0x7f000000000001ffULL;
inline constexpr uint64_t kL2ReservedMask = 0x3f000000000001feULL;

struct Header {
  uint32_t version = 3;
  uint64_t backing_file_offset = 0;
  uint32_t backing_file_size = 0;
  uint32_t cluster_bits = kDefaultClusterBits;
  uint64_t size = 0;  // virtual disk size in bytes
  uint32_t crypt_method = 0;
  uint32_t l1_size = 0;  // entries
  uint64_t l1_table_offset = 0;
  uint64_t refcount_table_offset = 0;
  uint32_t refcount_table_clusters = 0;
  uint32_t nb_snapshots = 0;
  uint64_t snapshots_offset = 0;
  uint64_t incompatible_features = 0;
  uint64_t compatible_features = 0;
  uint64_t autoclear_features = 0;
  uint32_t refcount_order = 4;  // refcount width = 1 << order bits (4: 16-bit)
  uint32_t header_length = kHeaderV3Length;
  uint8_t compression_type = 0;  // 0 deflate, 1 zstd (qcow2_compress.hpp)

  // From the header extensions and the backing file name field.
  std::string backing_file;    // as stored: a URI, an absolute path or relative to the image
  std::string backing_format;  // extension 0xe2792aca; empty if absent
  bool has_external_data_file = false;
  bool has_encryption_header = false;

  uint64_t cluster_size() const { return uint64_t{1} << cluster_bits; }
  uint64_t l2_entries() const { return cluster_size() / 8; }
  uint64_t refcount_bits() const { return uint64_t{1} << refcount_order; }
  uint64_t refcount_block_entries() const { return cluster_size() * 8 / refcount_bits(); }
};

// Parses and validates the header from the first bytes of an image (at least kHeaderV3Length;
// pass the whole first cluster so extensions and the backing file name can be read; if they lie
// beyond `bytes` the error says how many bytes are needed: EAGAIN + needed_bytes()).
// Refused with a reason (EINVAL unless noted): bad magic, version 2 (EPROTONOSUPPORT, hcnode
// writes v3 only: convert with qemu-img amend -o compat=1.1), cluster bits out of range,
// encryption, external data file, extended L2, compression types other than zlib (0) and zstd
// (1) or a type that disagrees with the compression type bit, unknown
// incompatible bits, the corrupt bit, tables not cluster-aligned or overlapping the header,
// an L1 table too small for the virtual size, sizes that overflow.
// The dirty bit (lazy refcounts) is parsed, not refused: the caller decides (read-only is fine;
// read-write needs a refcount rebuild, which hcnode does not do: refused there).
Result<Header> parse_header(std::span<const uint8_t> bytes);
// How many bytes parse_header needs to see all of the header's extensions and backing name.
Result<uint64_t> header_bytes_needed(std::span<const uint8_t> first_bytes);

struct NewImage {
  uint64_t virtual_size = 0;  // bytes, a multiple of 512, at most kMaxVirtualSize
  uint32_t cluster_bits = kDefaultClusterBits;
  std::string backing_file;    // empty: no backing file
  std::string backing_format;  // "raw" or "qcow2" (required with a backing file)
};

// The bytes of a new, empty image (see the layout above): write them at offset 0 of an empty
// file and the image is complete. EINVAL for sizes or names the format cannot hold.
Result<std::vector<uint8_t>> format_new_image(const NewImage& spec);

// qcow2's numbers are big-endian: base/endian.hpp's helpers, named here for the table code,
// hcctl and the tests.
using hcnode::load_be16;
using hcnode::load_be32;
using hcnode::load_be64;
using hcnode::store_be16;
using hcnode::store_be32;
using hcnode::store_be64;

// L1 entries needed to map `virtual_size` bytes with clusters of 1 << cluster_bits.
uint64_t l1_entries_for(uint64_t virtual_size, uint32_t cluster_bits);

}  // namespace hcnode::blockdev::qcow2
