// virtio-blk request layout (virtio 1.2 §5.2.6) and descriptor-chain
// building. Pure code (no I/O): the guest driver (virtio_blk.cpp) and the
// host test (host_test.cpp) use the same functions.
//
// A request is a device-readable 16-byte header {le32 type, le32 reserved,
// le64 sector}, then data (device-writable for IN and GET_ID, readable
// for OUT, DISCARD, WRITE_ZEROES; none for FLUSH), then a device-writable
// status byte. x86 is little-endian, so the structs are the wire format.
#pragma once

#include <cstdint>

#include "tests/guest/virtqueue.hpp"

namespace probe::blk {

// Request types (§5.2.6).
inline constexpr uint32_t kTypeIn = 0;
inline constexpr uint32_t kTypeOut = 1;
inline constexpr uint32_t kTypeFlush = 4;
inline constexpr uint32_t kTypeGetId = 8;
inline constexpr uint32_t kTypeDiscard = 11;
inline constexpr uint32_t kTypeWriteZeroes = 13;

// Status byte values (§5.2.6).
inline constexpr uint8_t kStatusOk = 0;
inline constexpr uint8_t kStatusIoErr = 1;
inline constexpr uint8_t kStatusUnsupp = 2;

inline constexpr uint32_t kSectorSize = 512;
inline constexpr uint32_t kIdBytes = 20;  // VIRTIO_BLK_ID_BYTES

// Feature bits (§5.2.3).
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

// struct virtio_blk_config offsets (§5.2.4).
inline constexpr uint32_t kCfgCapacity = 0;      // le64
inline constexpr uint32_t kCfgSizeMax = 8;       // le32
inline constexpr uint32_t kCfgSegMax = 12;       // le32
inline constexpr uint32_t kCfgBlkSize = 20;      // le32
inline constexpr uint32_t kCfgPhysBlockExp = 24;  // u8 (topology)
inline constexpr uint32_t kCfgAlignOffset = 25;  // u8
inline constexpr uint32_t kCfgMinIoSize = 26;    // le16
inline constexpr uint32_t kCfgOptIoSize = 28;    // le32
inline constexpr uint32_t kCfgWriteback = 32;    // u8
inline constexpr uint32_t kCfgNumQueues = 34;    // le16
inline constexpr uint32_t kCfgMaxDiscardSectors = 36;
inline constexpr uint32_t kCfgMaxDiscardSeg = 40;
inline constexpr uint32_t kCfgDiscardAlign = 44;
inline constexpr uint32_t kCfgMaxWriteZeroesSectors = 48;
inline constexpr uint32_t kCfgMaxWriteZeroesSeg = 52;
inline constexpr uint32_t kCfgWriteZeroesMayUnmap = 56;  // u8

struct ReqHeader {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};
static_assert(sizeof(ReqHeader) == 16);

// Payload of DISCARD and WRITE_ZEROES (§5.2.6: virtio_blk_discard_write_zeroes).
struct DiscardWriteZeroes {
    uint64_t sector;
    uint32_t num_sectors;
    uint32_t flags;  // bit 0: unmap (WRITE_ZEROES only); others reserved
};
static_assert(sizeof(DiscardWriteZeroes) == 16);
inline constexpr uint32_t kFlagUnmap = 1;

// Does the device write the data buffers of a request of this type?
inline constexpr bool data_device_writes(uint32_t type) {
    return type == kTypeIn || type == kTypeGetId;
}

struct SegLimits {
    uint32_t size_max = 0;  // largest data segment in bytes; 0 = no limit
    uint32_t seg_max = 0;   // most data segments per request; 0 = no limit
};

// Writes the descriptor chain of one request into out[]: the header
// (16 bytes, device-readable), the data split into segments of at most
// size_max bytes (device-writable for IN/GET_ID), the status byte
// (device-writable). data_len 0 (FLUSH) gives header + status. Returns the
// number of buffers, or 0 if it needs more than seg_max data segments or
// more than max_out buffers.
inline uint16_t build_chain(uint64_t header_addr, uint32_t type, uint64_t data_addr,
                            uint32_t data_len, uint64_t status_addr, SegLimits limits,
                            virtio::Virtqueue::Buffer* out, uint16_t max_out) {
    if (max_out < 2) {
        return 0;
    }
    uint16_t n = 0;
    out[n++] = {header_addr, static_cast<uint32_t>(sizeof(ReqHeader)), false};
    const bool writes = data_device_writes(type);
    uint32_t left = data_len;
    uint64_t at = data_addr;
    uint32_t segs = 0;
    while (left > 0) {
        const uint32_t len = limits.size_max != 0 && left > limits.size_max ? limits.size_max : left;
        ++segs;
        if ((limits.seg_max != 0 && segs > limits.seg_max) || n + 1 >= max_out) {
            return 0;
        }
        out[n++] = {at, len, writes};
        at += len;
        left -= len;
    }
    out[n++] = {status_addr, 1, true};
    return n;
}

// Data segments a request of data_len bytes needs (0 for no data).
inline uint32_t segments_for(uint32_t data_len, SegLimits limits) {
    if (data_len == 0) {
        return 0;
    }
    if (limits.size_max == 0) {
        return 1;
    }
    return (data_len + limits.size_max - 1) / limits.size_max;
}

// Turns a chain into an indirect descriptor table (§2.7.5.3.1): entry i
// has NEXT -> i+1 except the last; WRITE as the buffer says.
inline void to_indirect(const virtio::Virtqueue::Buffer* bufs, uint16_t n,
                        virtio::VirtqDesc* table) {
    for (uint16_t i = 0; i < n; ++i) {
        const bool last = i + 1 == n;
        table[i].addr = bufs[i].addr;
        table[i].len = bufs[i].len;
        table[i].flags = static_cast<uint16_t>((bufs[i].device_writes ? virtio::kDescFlagWrite : 0) |
                                               (last ? 0 : virtio::kDescFlagNext));
        table[i].next = last ? 0 : static_cast<uint16_t>(i + 1);
    }
}

}  // namespace probe::blk
