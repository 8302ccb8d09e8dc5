// Disk data patterns shared by the probe's virtio-blk modes and the host
// tests that check a disk image afterwards. This is a contract: the host
// side computes exactly the same bytes.
//
// Pattern (mode=write-verify, mode=zeroes): the little-endian u64 at disk
// byte offset o (o a multiple of 8) is mix(seed ^ o), mix = splitmix64's
// finalizer (below).
//
// Record (mode=records): record i (i = 1, 2, ...) is the 512-byte sector at
// disk byte offset s = offset + (i-1)*512:
//   bytes 0-7    ASCII "HCNREC01"
//   bytes 8-15   le64 i
//   bytes 16-23  le64 seed
//   word k=3..63 (bytes 8k..8k+7) le64 mix(seed ^ (s + 8k)), i.e. the
//                write-verify pattern of that sector from byte 24 on.
//
// Pure code (no libc, no I/O): builds for the guest and the host test.
#pragma once

#include <cstddef>
#include <cstdint>

namespace probe::pattern {

inline constexpr uint64_t mix(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// The pattern word at disk byte offset `disk_offset` (a multiple of 8).
inline constexpr uint64_t word(uint64_t seed, uint64_t disk_offset) {
    return mix(seed ^ disk_offset);
}

// Fills buf (len a multiple of 8, 8-byte aligned) with the pattern of the
// disk range starting at disk_offset (a multiple of 8). x86: little-endian.
inline void fill(void* buf, uint64_t disk_offset, size_t len, uint64_t seed) {
    auto* w = static_cast<uint64_t*>(buf);
    for (size_t i = 0; i < len / 8; ++i) {
        w[i] = word(seed, disk_offset + 8 * i);
    }
}

// Compares buf with the pattern; returns the number of mismatching 8-byte
// words and, if there is one and first_bad is not null, sets *first_bad to
// the disk offset of the first (left alone otherwise).
inline uint64_t check(const void* buf, uint64_t disk_offset, size_t len, uint64_t seed,
                      uint64_t* first_bad) {
    const auto* w = static_cast<const uint64_t*>(buf);
    uint64_t bad = 0;
    for (size_t i = 0; i < len / 8; ++i) {
        if (w[i] != word(seed, disk_offset + 8 * i)) {
            if (bad == 0 && first_bad != nullptr) {
                *first_bad = disk_offset + 8 * i;
            }
            ++bad;
        }
    }
    return bad;
}

// Bytes != 0 in buf[0, len).
inline uint64_t count_nonzero(const void* buf, size_t len) {
    const auto* p = static_cast<const uint8_t*>(buf);
    uint64_t n = 0;
    for (size_t i = 0; i < len; ++i) {
        n += p[i] != 0 ? 1 : 0;
    }
    return n;
}

inline constexpr size_t kRecordBytes = 512;
inline constexpr char kRecordMagic[9] = "HCNREC01";

// Disk byte offset of record `seq` (1-based).
inline constexpr uint64_t record_offset(uint64_t base_offset, uint64_t seq) {
    return base_offset + (seq - 1) * kRecordBytes;
}

// Builds record `seq` for the sector at disk byte offset sector_offset
// into buf (512 bytes, 8-byte aligned).
inline void make_record(void* buf, uint64_t seq, uint64_t seed, uint64_t sector_offset) {
    auto* w = static_cast<uint64_t*>(buf);
    uint64_t magic = 0;
    for (int i = 7; i >= 0; --i) {
        magic = (magic << 8) | static_cast<uint8_t>(kRecordMagic[i]);
    }
    w[0] = magic;
    w[1] = seq;
    w[2] = seed;
    for (size_t k = 3; k < kRecordBytes / 8; ++k) {
        w[k] = word(seed, sector_offset + 8 * k);
    }
}

// True if buf holds exactly record `seq` for that sector.
inline bool check_record(const void* buf, uint64_t seq, uint64_t seed, uint64_t sector_offset) {
    uint64_t want[kRecordBytes / 8];
    make_record(want, seq, seed, sector_offset);
    const auto* w = static_cast<const uint64_t*>(buf);
    for (size_t k = 0; k < kRecordBytes / 8; ++k) {
        if (w[k] != want[k]) {
            return false;
        }
    }
    return true;
}

}  // namespace probe::pattern
