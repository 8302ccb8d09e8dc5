// A polled virtio-blk driver (virtio 1.2 §5.2) for the probe's blk modes
// (blk_modes.cpp), on top of the virtio-pci core (virtio_pci.hpp).
//
// init(): finds the disk=N-th virtio-blk function on bus 0 (0x1AF4:0x1042
// or transitional 0x1001, counted together in bus order), maps it,
// negotiates SIZE_MAX, SEG_MAX, GEOMETRY, RO, BLK_SIZE, FLUSH, TOPOLOGY,
// MQ, DISCARD, WRITE_ZEROES and (unless indirect=0) VIRTIO_F_INDIRECT_DESC
// as offered (never CONFIG_WCE or EVENT_IDX), reads the configuration
// (§5.2.4), sets up the requested number of queues (sizes up to 256),
// DRIVER_OK, then asks for the serial with GET_ID (type 8; no feature bit
// in virtio 1.2; empty if the device answers UNSUPP/IOERR).
//
// Requests use per-slot memory (header, status, discard/write-zeroes
// payload, indirect table) in static BSS: slot s may be in flight once.
// Data buffers are the caller's (identity-mapped statics). Chains are
// direct (header, data split at size_max, status) unless use_indirect()
// was switched on (then one ring descriptor per request).
#pragma once

#include <cstdint>

#include "tests/guest/blk_request.hpp"
#include "tests/guest/virtio_pci.hpp"
#include "tests/guest/virtqueue.hpp"

namespace probe::blk {

inline constexpr uint16_t kMaxQueues = 8;
inline constexpr uint16_t kMaxSlots = 256;  // requests in flight over all queues
inline constexpr uint16_t kMaxSegs = 32;    // data segments per request
inline constexpr uint16_t kMaxChain = kMaxSegs + 2;
inline constexpr uint8_t kStatusUnset = 0xEE;  // preset; "the device did not write it"

// Results of wait()/sync() besides a status byte 0..255.
inline constexpr int kWaitTimeout = -1;
inline constexpr int kWaitBadId = -2;
inline constexpr int kSubmitFailed = -3;  // no descriptors, or the chain does not fit

struct Config {
    uint64_t capacity = 0;  // 512-byte sectors
    uint32_t size_max = 0;  // 0 unless SIZE_MAX
    uint32_t seg_max = 0;   // 0 unless SEG_MAX
    uint32_t blk_size = kSectorSize;  // 512 unless BLK_SIZE
    uint8_t phys_block_exp = 0;
    uint8_t alignment_offset = 0;
    uint16_t min_io_size = 0;
    uint32_t opt_io_size = 0;
    uint8_t writeback = 0;
    uint16_t num_queues = 1;  // 1 unless MQ
    uint32_t max_discard_sectors = 0;
    uint32_t max_discard_seg = 0;
    uint32_t discard_sector_alignment = 0;
    uint32_t max_write_zeroes_sectors = 0;
    uint32_t max_write_zeroes_seg = 0;
    uint8_t write_zeroes_may_unmap = 0;
};

struct Options {
    uint32_t disk = 0;     // disk=N
    uint16_t queues = 1;   // queues to set up (<= the device's num_queues)
    bool clamp_queues = false;  // set up min(queues, num_queues) instead of failing
    bool indirect = true;  // negotiate VIRTIO_F_INDIRECT_DESC if offered
    uint64_t tsc_khz = 0;
    uint64_t timeout_ms = 10'000;  // bound of every synchronous wait
};

// Per-request memory the device reads/writes.
struct alignas(64) Slot {
    ReqHeader header;
    DiscardWriteZeroes range;  // DISCARD / WRITE_ZEROES payload
    uint8_t status;
    uint16_t queue;
    uint16_t head;
    uint64_t t_submit;  // TSC at submit (mode=io latency)
};

inline uint64_t ticks_to_us(uint64_t ticks, uint64_t khz) {
    return khz == 0 ? 0 : ticks * 1000 / khz;
}

class Driver {
  public:
    const char* init(const Options& options);
    // Reset and full re-initialization (same features, same queues), e.g.
    // after DEVICE_NEEDS_RESET or a request that never completed.
    const char* reinit();

    // The report lines: "probe: blk ..." (the contract line), then
    // "probe: blk_setup ...", "probe: blk_config ...", "probe: blk_discard ...".
    void report() const;

    uint64_t features() const { return dev_.driver_features(); }
    bool has(uint64_t feature) const { return (dev_.driver_features() & feature) != 0; }
    const Config& config() const { return cfg_; }
    uint16_t queues() const { return queues_; }
    uint16_t queue_size(uint16_t q) const;
    virtio::Virtqueue& queue(uint16_t q);
    virtio::Device& device() { return dev_; }
    Slot& slot(uint16_t s);
    uint64_t timeout_ticks() const { return timeout_ticks_; }
    uint64_t tsc_khz() const { return opt_.tsc_khz; }
    SegLimits limits() const { return limits_; }

    // Switch indirect tables on (only if negotiated: returns false otherwise).
    bool use_indirect(bool on);
    bool indirect() const { return use_indirect_; }
    // Requests of data_len bytes that fit on one queue at once.
    uint16_t per_queue_capacity(uint32_t data_len) const;

    // Adds one request to queue q (not yet kicked), using slot s. For
    // DISCARD/WRITE_ZEROES pass data = &slot(s).range, len 16 (filled by
    // the caller). Status is preset to kStatusUnset. False if it does not fit.
    bool submit(uint16_t q, uint16_t s, uint32_t type, uint64_t sector, const void* data,
                uint32_t len);
    void kick(uint16_t q) { queue(q).kick(); }
    // Non-blocking: a completed request's slot; false if none.
    // *bad_id is set when the device returned an id we did not hand out.
    bool try_complete(uint16_t q, uint16_t* s, uint32_t* used_len, bool* bad_id);
    // Blocking until deadline: the status byte, or kWaitTimeout/kWaitBadId.
    int wait(uint16_t q, uint64_t deadline, uint16_t* s, uint32_t* used_len);

    // One synchronous request on queue q (slot kSyncSlot): the status byte,
    // or kWaitTimeout / kWaitBadId / kSubmitFailed.
    int sync(uint16_t q, uint32_t type, uint64_t sector, const void* data, uint32_t len,
             uint32_t* used_len = nullptr);
    int sync_range(uint16_t q, uint32_t type, uint64_t sector, uint32_t num_sectors,
                   uint32_t flags);
    static constexpr uint16_t kSyncSlot = kMaxSlots - 1;

    const char* serial() const { return serial_; }
    uint64_t init_us() const { return init_us_; }

  private:
    const char* bring_up();  // negotiate .. driver_ok (init and reinit)

    Options opt_{};
    virtio::Device dev_{0};
    Config cfg_{};
    SegLimits limits_{};
    uint64_t wanted_ = 0;
    uint64_t features_at_init_ = 0;
    uint64_t timeout_ticks_ = 0;
    uint16_t queues_ = 1;
    bool use_indirect_ = false;
    char serial_[kIdBytes + 1] = {};
    uint64_t init_us_ = 0;
};

}  // namespace probe::blk
