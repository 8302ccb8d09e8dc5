#include "tests/guest/virtio_blk.hpp"

#include "tests/guest/cpuid.hpp"
#include "tests/guest/format.hpp"
#include "tests/guest/serial.hpp"
#include "tests/guest/tsc.hpp"

namespace probe::blk {
namespace {

// Static, hence identity-mapped: virtual == guest-physical (§2.7).
constinit virtio::Virtqueue g_queues[kMaxQueues];
constinit Slot g_slots[kMaxSlots];
alignas(16) constinit virtio::VirtqDesc g_tables[kMaxSlots][kMaxChain];
// slot of each head handed out, per queue; kNoSlot when none.
constexpr uint16_t kNoSlot = 0xFFFF;
constinit uint16_t g_slot_of[kMaxQueues][virtio::Virtqueue::kMaxSize];
alignas(64) constinit uint8_t g_id_buf[kIdBytes];

constexpr uint64_t kWanted = kFeatureSizeMax | kFeatureSegMax | kFeatureGeometry | kFeatureRo |
                             kFeatureBlkSize | kFeatureFlush | kFeatureTopology | kFeatureMq |
                             kFeatureDiscard | kFeatureWriteZeroes;

uintptr_t addr_of(const void* p) { return reinterpret_cast<uintptr_t>(p); }

void bdf_text(pci::Function fn, char (&out)[8]) {
    static constexpr char kHex[] = "0123456789abcdef";
    out[0] = '0';
    out[1] = '0';
    out[2] = ':';
    out[3] = kHex[fn.dev >> 4];
    out[4] = kHex[fn.dev & 15];
    out[5] = '.';
    out[6] = static_cast<char>('0' + fn.fn);
    out[7] = '\0';
}

}  // namespace

virtio::Virtqueue& Driver::queue(uint16_t q) { return g_queues[q]; }
uint16_t Driver::queue_size(uint16_t q) const { return g_queues[q].size(); }
Slot& Driver::slot(uint16_t s) { return g_slots[s]; }

const char* Driver::init(const Options& options) {
    const uint64_t t0 = cpu::rdtsc();
    opt_ = options;
    timeout_ticks_ = tsc::ms_to_ticks(opt_.timeout_ms, opt_.tsc_khz);
    dev_.set_timeout_ticks(timeout_ticks_);
    if (!dev_.find_nth(virtio::kDeviceIdBlock, virtio::kTransitionalIdBlock, opt_.disk)) {
        return "device-missing";
    }
    if (const char* e = dev_.map()) {
        return e;
    }
    wanted_ = kWanted | (opt_.indirect ? virtio::kFeatureIndirectDesc : 0);
    if (const char* e = dev_.negotiate(wanted_)) {
        return e;
    }
    features_at_init_ = dev_.driver_features();
    // §5.2.4: fields are valid only with their feature bit.
    Config& c = cfg_;
    c.capacity = dev_.read_config(kCfgCapacity, 8);
    if (has(kFeatureSizeMax)) {
        c.size_max = static_cast<uint32_t>(dev_.read_config(kCfgSizeMax, 4));
    }
    if (has(kFeatureSegMax)) {
        c.seg_max = static_cast<uint32_t>(dev_.read_config(kCfgSegMax, 4));
    }
    if (has(kFeatureBlkSize)) {
        c.blk_size = static_cast<uint32_t>(dev_.read_config(kCfgBlkSize, 4));
    }
    if (has(kFeatureTopology)) {
        c.phys_block_exp = static_cast<uint8_t>(dev_.read_config(kCfgPhysBlockExp, 1));
        c.alignment_offset = static_cast<uint8_t>(dev_.read_config(kCfgAlignOffset, 1));
        c.min_io_size = static_cast<uint16_t>(dev_.read_config(kCfgMinIoSize, 2));
        c.opt_io_size = static_cast<uint32_t>(dev_.read_config(kCfgOptIoSize, 4));
    }
    c.writeback = has(kFeatureFlush) ? 1 : 0;  // without CONFIG_WCE: FLUSH offered = write-back cache (§5.2.5)
    if (has(kFeatureMq)) {
        c.num_queues = static_cast<uint16_t>(dev_.read_config(kCfgNumQueues, 2));
    }
    if (has(kFeatureDiscard)) {
        c.max_discard_sectors = static_cast<uint32_t>(dev_.read_config(kCfgMaxDiscardSectors, 4));
        c.max_discard_seg = static_cast<uint32_t>(dev_.read_config(kCfgMaxDiscardSeg, 4));
        c.discard_sector_alignment = static_cast<uint32_t>(dev_.read_config(kCfgDiscardAlign, 4));
    }
    if (has(kFeatureWriteZeroes)) {
        c.max_write_zeroes_sectors =
            static_cast<uint32_t>(dev_.read_config(kCfgMaxWriteZeroesSectors, 4));
        c.max_write_zeroes_seg = static_cast<uint32_t>(dev_.read_config(kCfgMaxWriteZeroesSeg, 4));
        c.write_zeroes_may_unmap =
            static_cast<uint8_t>(dev_.read_config(kCfgWriteZeroesMayUnmap, 1));
    }
    limits_.size_max = c.size_max;
    limits_.seg_max = c.seg_max;
    if (c.num_queues == 0) {
        dev_.set_failed();
        return "num-queues-zero";
    }
    uint16_t want = options.queues;
    if (options.clamp_queues) {
        want = want > c.num_queues ? c.num_queues : want;
        want = want > kMaxQueues ? kMaxQueues : want;
    }
    if (want == 0 || want > c.num_queues || want > kMaxQueues) {
        dev_.set_failed();
        return "not-enough-queues";
    }
    queues_ = want;
    if (const char* e = bring_up()) {
        return e;
    }

    // GET_ID: 20 bytes, NUL-padded if shorter (§5.2.6).
    for (auto& b : g_id_buf) {
        b = 0;
    }
    const int st = sync(0, kTypeGetId, 0, g_id_buf, kIdBytes);
    if (st == kWaitTimeout) {
        return "get-id-timeout";
    }
    if (st == kStatusOk) {
        for (uint32_t i = 0; i < kIdBytes && g_id_buf[i] != 0; ++i) {
            serial_[i] = static_cast<char>(g_id_buf[i]);
        }
    }
    init_us_ = ticks_to_us(cpu::rdtsc() - t0, opt_.tsc_khz);
    return nullptr;
}

// Queues and DRIVER_OK, after negotiate() (§3.1.1 steps 7-8).
const char* Driver::bring_up() {
    for (uint16_t q = 0; q < queues_; ++q) {
        if (const char* e = dev_.setup_queue(q, g_queues[q])) {
            dev_.set_failed();
            return e;
        }
        for (auto& s : g_slot_of[q]) {
            s = kNoSlot;
        }
    }
    return dev_.driver_ok();
}

const char* Driver::reinit() {
    if (const char* e = dev_.negotiate(wanted_)) {
        return e;
    }
    if (dev_.driver_features() != features_at_init_) {
        dev_.set_failed();
        return "features-changed";  // the device offers something else after a reset
    }
    return bring_up();
}

bool Driver::use_indirect(bool on) {
    if (on && !has(virtio::kFeatureIndirectDesc)) {
        return false;
    }
    use_indirect_ = on;
    return true;
}

uint16_t Driver::per_queue_capacity(uint32_t data_len) const {
    const uint16_t size = g_queues[0].size();
    if (use_indirect_) {
        return size;
    }
    const uint32_t chain = 2 + segments_for(data_len, limits_);
    return static_cast<uint16_t>(size / chain);
}

bool Driver::submit(uint16_t q, uint16_t s, uint32_t type, uint64_t sector, const void* data,
                    uint32_t len) {
    Slot& sl = g_slots[s];
    sl.header.type = type;
    sl.header.reserved = 0;
    sl.header.sector = sector;
    sl.status = kStatusUnset;
    sl.queue = q;
    virtio::Virtqueue::Buffer bufs[kMaxChain];
    const uint16_t n = build_chain(addr_of(&sl.header), type, addr_of(data), len,
                                   addr_of(&sl.status), limits_, bufs, kMaxChain);
    if (n == 0) {
        return false;
    }
    virtio::Virtqueue& vq = g_queues[q];
    uint16_t head = 0;
    if (use_indirect_) {
        to_indirect(bufs, n, g_tables[s]);
        if (!vq.add_indirect(addr_of(g_tables[s]), n, &head)) {
            return false;
        }
    } else if (!vq.add(bufs, n, &head)) {
        return false;
    }
    sl.head = head;
    g_slot_of[q][head] = s;
    return true;
}

bool Driver::try_complete(uint16_t q, uint16_t* s, uint32_t* used_len, bool* bad_id) {
    virtio::Virtqueue::Used used{};
    const auto r = g_queues[q].try_poll(&used);
    if (r == virtio::Virtqueue::PollResult::kEmpty) {
        return false;
    }
    if (r != virtio::Virtqueue::PollResult::kOk || g_slot_of[q][used.id] == kNoSlot) {
        *bad_id = true;
        return false;
    }
    *s = g_slot_of[q][used.id];
    g_slot_of[q][used.id] = kNoSlot;
    *used_len = used.len;
    return true;
}

int Driver::wait(uint16_t q, uint64_t deadline, uint16_t* s, uint32_t* used_len) {
    virtio::Virtqueue::Used used{};
    const auto r = g_queues[q].poll(&used, deadline);
    if (r == virtio::Virtqueue::PollResult::kTimeout) {
        return kWaitTimeout;
    }
    if (r != virtio::Virtqueue::PollResult::kOk || g_slot_of[q][used.id] == kNoSlot) {
        return kWaitBadId;
    }
    *s = g_slot_of[q][used.id];
    g_slot_of[q][used.id] = kNoSlot;
    if (used_len != nullptr) {
        *used_len = used.len;
    }
    // The device wrote the status before publishing the used element.
    return *static_cast<volatile uint8_t*>(&g_slots[*s].status);
}

int Driver::sync(uint16_t q, uint32_t type, uint64_t sector, const void* data, uint32_t len,
                 uint32_t* used_len) {
    if (!submit(q, kSyncSlot, type, sector, data, len)) {
        return kSubmitFailed;
    }
    kick(q);
    uint16_t s = 0;
    uint32_t ul = 0;
    const int st = wait(q, cpu::rdtsc() + timeout_ticks_, &s, &ul);
    if (used_len != nullptr) {
        *used_len = ul;
    }
    if (st >= 0 && s != kSyncSlot) {
        return kWaitBadId;
    }
    return st;
}

int Driver::sync_range(uint16_t q, uint32_t type, uint64_t sector, uint32_t num_sectors,
                       uint32_t flags) {
    Slot& sl = g_slots[kSyncSlot];
    sl.range.sector = sector;
    sl.range.num_sectors = num_sectors;
    sl.range.flags = flags;
    return sync(q, type, 0, &sl.range, sizeof(sl.range));
}

void Driver::report() const {
    char bdf[8];
    bdf_text(dev_.function(), bdf);
    size_t serial_len = 0;
    while (serial_[serial_len] != '\0') {
        ++serial_len;
    }
    serial::emit(Record("blk")
                     .u("disk", opt_.disk)
                     .x("features", dev_.device_features())
                     .u("capacity", cfg_.capacity)
                     .u("blk_size", cfg_.blk_size)
                     .u("num_queues", cfg_.num_queues)
                     .u("seg_max", cfg_.seg_max)
                     .u("ro", has(kFeatureRo) ? 1 : 0)
                     .quoted("serial", serial_, serial_len)
                     .word("bdf", bdf));
    serial::emit(Record("blk_setup")
                     .x("pci_id", dev_.device_id())
                     .x("accepted", dev_.driver_features())
                     .u("queues", queues_)
                     .u("queue_size", g_queues[0].size())
                     .u("indirect", has(virtio::kFeatureIndirectDesc) ? 1 : 0)
                     .u("flush", has(kFeatureFlush) ? 1 : 0)
                     .u("discard", has(kFeatureDiscard) ? 1 : 0)
                     .u("write_zeroes", has(kFeatureWriteZeroes) ? 1 : 0)
                     .u("bars_assigned", dev_.bars_assigned())
                     .u("init_us", init_us_));
    serial::emit(Record("blk_config")
                     .u("size_max", cfg_.size_max)
                     .u("phys_block_exp", cfg_.phys_block_exp)
                     .u("alignment_offset", cfg_.alignment_offset)
                     .u("min_io_size", cfg_.min_io_size)
                     .u("opt_io_size", cfg_.opt_io_size)
                     .u("writeback", cfg_.writeback));
    serial::emit(Record("blk_discard")
                     .u("max_discard_sectors", cfg_.max_discard_sectors)
                     .u("max_discard_seg", cfg_.max_discard_seg)
                     .u("discard_sector_alignment", cfg_.discard_sector_alignment)
                     .u("max_write_zeroes_sectors", cfg_.max_write_zeroes_sectors)
                     .u("max_write_zeroes_seg", cfg_.max_write_zeroes_seg)
                     .u("write_zeroes_may_unmap", cfg_.write_zeroes_may_unmap));
}

}  // namespace probe::blk
