// Numbers and layouts of the virtio block device (virtio 1.2 section 5.2) that the device, its
// request parser, tests and the fuzzer share.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hcnode::compute::virtio::blk {

// Feature bits (5.2.3), as masks.
inline constexpr uint64_t kFeatureSizeMax = 1ull << 1;
inline constexpr uint64_t kFeatureSegMax = 1ull << 2;
inline constexpr uint64_t kFeatureGeometry = 1ull << 4;
inline constexpr uint64_t kFeatureRo = 1ull << 5;
inline constexpr uint64_t kFeatureBlkSize = 1ull << 6;
inline constexpr uint64_t kFeatureFlush = 1ull << 9;
inline constexpr uint64_t kFeatureTopology = 1ull << 10;
inline constexpr uint64_t kFeatureConfigWce = 1ull << 11;
inline constexpr uint64_t kFeatureMq = 1ull << 12;
inline constexpr uint64_t kFeatureDiscard = 1ull << 13;
inline constexpr uint64_t kFeatureWriteZeroes = 1ull << 14;

// Request types (5.2.6).
inline constexpr uint32_t kTypeIn = 0;
inline constexpr uint32_t kTypeOut = 1;
inline constexpr uint32_t kTypeFlush = 4;
inline constexpr uint32_t kTypeGetId = 8;
inline constexpr uint32_t kTypeGetLifetime = 10;
inline constexpr uint32_t kTypeDiscard = 11;
inline constexpr uint32_t kTypeWriteZeroes = 13;
inline constexpr uint32_t kTypeSecureErase = 14;

// Status values (5.2.6).
inline constexpr uint8_t kStatusOk = 0;
inline constexpr uint8_t kStatusIoErr = 1;
inline constexpr uint8_t kStatusUnsupp = 2;

// struct virtio_blk_req's header: le32 type, le32 reserved, le64 sector (5.2.6).
inline constexpr size_t kHeaderSize = 16;
// "The sector number indicates the offset (multiplied by 512) where the read or write is to
// occur" — always 512-byte units, whatever blk_size says (5.2.6).
inline constexpr uint64_t kSectorSize = 512;
// GET_ID: "up to VIRTIO_BLK_ID_BYTES" (20) bytes of serial, NUL-padded.
inline constexpr size_t kIdBytes = 20;

// struct virtio_blk_discard_write_zeroes (5.2.6): le64 sector, le32 num_sectors, le32 flags.
inline constexpr size_t kRangeSegmentSize = 16;
inline constexpr uint32_t kRangeFlagUnmap = 1;  // VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP

// struct virtio_blk_config (5.2.4) field offsets.
namespace config {
inline constexpr size_t kCapacity = 0;                 // le64, 512-byte sectors
inline constexpr size_t kSizeMax = 8;                  // le32
inline constexpr size_t kSegMax = 12;                  // le32
inline constexpr size_t kGeometry = 16;                // le16 cylinders, u8 heads, u8 sectors
inline constexpr size_t kBlkSize = 20;                 // le32
inline constexpr size_t kPhysicalBlockExp = 24;        // u8
inline constexpr size_t kAlignmentOffset = 25;         // u8
inline constexpr size_t kMinIoSize = 26;               // le16, in blk_size units
inline constexpr size_t kOptIoSize = 28;               // le32, in blk_size units
inline constexpr size_t kWriteback = 32;               // u8
inline constexpr size_t kNumQueues = 34;               // le16
inline constexpr size_t kMaxDiscardSectors = 36;       // le32
inline constexpr size_t kMaxDiscardSeg = 40;           // le32
inline constexpr size_t kDiscardSectorAlignment = 44;  // le32
inline constexpr size_t kMaxWriteZeroesSectors = 48;   // le32
inline constexpr size_t kMaxWriteZeroesSeg = 52;       // le32
inline constexpr size_t kWriteZeroesMayUnmap = 56;     // u8
inline constexpr size_t kSize = 60;  // through write_zeroes_may_unmap + padding (no secure erase)
}  // namespace config

}  // namespace hcnode::compute::virtio::blk
