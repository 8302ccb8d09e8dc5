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

// =============================================================================================
// hcnode's choices: what this device does where virtio 1.2 leaves the device's behaviour open.
// Written down once, here. The parser (blk_request.cpp) follows them, and the fuzz target's
// reference model (tests/fuzz/virtio_blk_fuzz.cpp) reads them from here — everything else the
// model takes from the spec text, never from the parser. Outside these choices the device
// follows the spec's own words: IOERR "for device or driver error", UNSUPP "for a request
// unsupported by device" (5.2.6), IOERR for writes to a VIRTIO_BLK_F_RO device and UNSUPP for
// unknown or (on DISCARD) UNMAP segment flags (5.2.6.2).
//
// Choices without a number, which both follow as written:
//  - Supported request types: IN, OUT, FLUSH and GET_ID always (FLUSH whether or not
//    VIRTIO_BLK_F_FLUSH was negotiated: we always offer it; GET_ID has no feature bit),
//    DISCARD and WRITE_ZEROES when negotiated (below). Every other type, GET_LIFETIME and
//    SECURE_ERASE included (their features are never offered), is UNSUPP.
//  - Fields and bytes a request type does not use are ignored, not checked: `reserved`
//    (5.2.6), FLUSH's `sector` (5.2.6.1 "MUST set sector to 0") and data ("SHOULD NOT include
//    any data"), readable bytes after the header of IN/FLUSH/GET_ID, and writable bytes before
//    the status byte of OUT/FLUSH/DISCARD/WRITE_ZEROES.
//  - A range segment with num_sectors 0 succeeds (nothing to do); discard_sector_alignment
//    (5.2.4) is a hint to the driver, not checked.
//  - A chain without any device-writable byte has no status byte (5.2.6: "the final byte of the
//    last writable buffer"): it is completed with used length 0 and nothing written.
//  - The used length (2.7.8 `len`) of a completed request is the data bytes the device wrote
//    plus the status byte, also when bytes the device did not write lie between the two (GET_ID
//    into a buffer longer than 20 bytes, writable bytes before an OUT's status); a failed
//    request writes only its status byte: used length 1.
namespace choice {

// 5.2.4 max_discard_seg and max_write_zeroes_seg: we offer one segment per request (as QEMU
// does): BlkRequest carries one range, and Linux sends one unless offered more.
inline constexpr uint32_t kMaxRangeSegments = 1;

// 5.2.6.1 makes the driver send 1..max_*_seg whole 16-byte segments but gives no device answer
// to other DISCARD/WRITE_ZEROES data lengths: UNSUPP, a request shape this device does not take.
inline constexpr uint8_t kBadRangeSegmentsStatus = kStatusUnsupp;

// DISCARD / WRITE_ZEROES without VIRTIO_BLK_F_DISCARD / _WRITE_ZEROES negotiated (5.2.3):
// UNSUPP, "a request unsupported by device" for this driver (5.2.6).
inline constexpr uint8_t kRangeNotNegotiatedStatus = kStatusUnsupp;

// 5.2.6.2's "IOERR for a write request if VIRTIO_BLK_F_RO" does not say whether DISCARD and
// WRITE_ZEROES are write requests: they change the disk's contents, so they are (IOERR).
inline constexpr bool kRangeRequestsAreWrites = true;

// The longest IN/OUT data in bytes (the spec has no maximum): an IN's used length (2.7.8,
// le32) counts its data and the status byte, so data + 1 must fit in 32 bits. Longer: IOERR.
inline constexpr uint64_t kMaxDataBytes = UINT32_MAX - 1;

// GET_ID's data bytes the device writes, for `data_bytes` bytes of writable data buffer. The
// driver MUST give 20 (5.2.6.1); a shorter buffer gets the ID cut to its length (Linux always
// gives 20, a truncated serial beats an error), a longer one the 20 bytes and nothing more.
constexpr uint64_t get_id_bytes(uint64_t data_bytes) {
  return data_bytes < kIdBytes ? data_bytes : kIdBytes;
}

}  // namespace choice

}  // namespace hcnode::compute::virtio::blk
