// The virtio-blk modes (blk_modes.hpp); output contract in README.md.
#include "tests/guest/blk_modes.hpp"

#include "tests/guest/cpuid.hpp"
#include "tests/guest/exit.hpp"
#include "tests/guest/format.hpp"
#include "tests/guest/histogram.hpp"
#include "tests/guest/pattern.hpp"
#include "tests/guest/serial.hpp"
#include "tests/guest/tsc.hpp"
#include "tests/guest/virtio_blk.hpp"

namespace probe::blk {
namespace {

// Data buffers: static, identity-mapped. 4 MiB keeps the image well inside
// the 64 MiB hcnode gives the probe (image at 1 MiB, ~5 MiB with this).
constexpr uint64_t kPoolBytes = 4ull << 20;
alignas(4096) constinit uint8_t g_pool[kPoolBytes];
alignas(4096) constinit uint8_t g_check_buf[2][4096];  // hostile_check, ro-check
alignas(16) constinit virtio::VirtqDesc g_htable[virtio::Virtqueue::kMaxSize + 2];
constinit ReqHeader g_hheader;
constinit DiscardWriteZeroes g_hrange;
constinit uint8_t g_hstatus;

constinit Driver g_drv;
constinit Histogram g_hist;

constexpr uint64_t kMaxDepth = 128;
constexpr uint64_t kIoRegionCap = 1ull << 30;

uintptr_t addr_of(const void* p) { return reinterpret_cast<uintptr_t>(p); }

uint8_t bad_param(const Cmdline& c, const char* reason, const char* key) {
    const Str v = c.get(key);
    serial::emit(Record("error").word("reason", reason).quoted(key, v.data, v.size));
    return kStatusBadCmdline;
}

uint8_t fail(const char* reason) {
    serial::emit(Record("error").word("reason", reason).word("device", "blk"));
    return kStatusFailure;
}

uint8_t fail_status(const char* reason, int status) {
    Record r("error");
    r.word("reason", reason).word("device", "blk");
    if (status >= 0) {
        r.u("status", static_cast<uint64_t>(status));
    } else {
        r.word("status", status == kWaitTimeout ? "timeout" : "bad-id");
    }
    serial::emit(r);
    return kStatusFailure;
}

// Parameters common to every blk mode: disk=N, indirect=0|1, timeout_ms=.
// Initializes g_drv with `queues` queues and prints the blk lines.
// Returns kStatusOk or the status to exit with.
uint8_t start(const Cmdline& c, uint64_t khz, uint16_t queues, bool clamp_queues,
              uint64_t default_timeout_ms) {
    Options o;
    uint64_t disk = 0;
    uint64_t indirect = 1;
    uint64_t timeout_ms = 0;
    if (!c.get_u64("disk", 0, &disk) || disk > 255) {
        return bad_param(c, "bad-number", "disk");
    }
    if (!c.get_u64("indirect", 1, &indirect) || indirect > 1) {
        return bad_param(c, "bad-number", "indirect");
    }
    if (!c.get_u64("timeout_ms", default_timeout_ms, &timeout_ms) || timeout_ms == 0 ||
        timeout_ms > 3'600'000) {
        return bad_param(c, "bad-number", "timeout_ms");
    }
    o.disk = static_cast<uint32_t>(disk);
    o.queues = queues;
    o.clamp_queues = clamp_queues;
    o.indirect = indirect == 1;
    o.tsc_khz = khz;
    o.timeout_ms = timeout_ms;
    if (const char* e = g_drv.init(o)) {
        return fail(e);
    }
    g_drv.report();
    return kStatusOk;
}

// bytes of the disk.
uint64_t disk_bytes() { return g_drv.config().capacity * kSectorSize; }

bool sector_aligned(uint64_t v) { return v % kSectorSize == 0; }

// Makes `per_queue` requests of data_len bytes fit on one queue: direct
// chains if they do, else indirect tables if negotiated. False if neither.
bool fit_in_queue(uint64_t per_queue, uint32_t data_len) {
    g_drv.use_indirect(false);
    if (per_queue <= g_drv.per_queue_capacity(data_len)) {
        return true;
    }
    return g_drv.use_indirect(true) && per_queue <= g_drv.per_queue_capacity(data_len);
}

const char* status_word(int st) {
    if (st == kStatusOk) {
        return "ok";
    }
    if (st == kStatusUnsupp) {
        return "unsupported";
    }
    return "ioerr";
}

// ---------------------------------------------------------------------
// A pass of data requests over [offset, offset+bytes) in bs chunks with up
// to `depth` in flight on queue 0; writes fill the pattern first, reads
// check it. Counts per-request errors; returns nullptr or a fatal reason.
struct PassResult {
    uint64_t requests = 0;
    uint64_t errors = 0;
    uint64_t mismatches = 0;
    uint64_t first_bad = ~0ull;
};

const char* run_pass(bool write, uint64_t offset, uint64_t bytes, uint64_t bs, uint64_t depth,
                     uint64_t seed, PassResult* res) {
    const uint64_t nreq = (bytes + bs - 1) / bs;
    uint64_t chunk_of[kMaxDepth] = {};
    uint64_t next = 0;
    uint64_t in_flight = 0;
    bool free_slot[kMaxDepth];
    for (uint64_t s = 0; s < depth; ++s) {
        free_slot[s] = true;
    }
    while (next < nreq || in_flight > 0) {
        bool added = false;
        for (uint16_t s = 0; s < depth && next < nreq; ++s) {
            if (!free_slot[s]) {
                continue;
            }
            const uint64_t at = offset + next * bs;
            const uint64_t len = bytes - next * bs < bs ? bytes - next * bs : bs;
            uint8_t* buf = g_pool + s * bs;
            if (write) {
                pattern::fill(buf, at, len, seed);
            }
            if (!g_drv.submit(0, s, write ? kTypeOut : kTypeIn, at / kSectorSize, buf,
                              static_cast<uint32_t>(len))) {
                return "submit-failed";
            }
            free_slot[s] = false;
            chunk_of[s] = next;
            ++next;
            ++in_flight;
            added = true;
        }
        if (added) {
            g_drv.kick(0);
        }
        uint16_t s = 0;
        const int st = g_drv.wait(0, cpu::rdtsc() + g_drv.timeout_ticks(), &s, nullptr);
        if (st == kWaitTimeout) {
            return "timeout";
        }
        if (st == kWaitBadId || s >= depth) {
            return "bad-used-id";
        }
        free_slot[s] = true;
        --in_flight;
        ++res->requests;
        if (st != kStatusOk) {
            ++res->errors;
        } else if (!write) {
            const uint64_t at = offset + chunk_of[s] * bs;
            const uint64_t len = bytes - chunk_of[s] * bs < bs ? bytes - chunk_of[s] * bs : bs;
            uint64_t fb = ~0ull;
            const uint64_t bad = pattern::check(g_pool + s * bs, at, len, seed, &fb);
            if (bad != 0 && (res->mismatches == 0 || fb < res->first_bad)) {
                res->first_bad = fb;
            }
            res->mismatches += bad;
        }
    }
    return nullptr;
}

}  // namespace

// mode=write-verify offset= bytes= bs= seed= depth= verify-only=
uint8_t mode_write_verify(const Cmdline& c, uint64_t khz) {
    uint64_t offset = 0, bytes = 0, bs = 0, seed = 0, depth = 0, verify_only = 0;
    if (!c.get_u64("offset", 0, &offset) || !sector_aligned(offset)) {
        return bad_param(c, "bad-number", "offset");
    }
    if (!c.get_u64("bytes", 1ull << 20, &bytes) || bytes == 0 || !sector_aligned(bytes)) {
        return bad_param(c, "bad-number", "bytes");
    }
    if (!c.get_u64("bs", 65536, &bs) || bs == 0 || !sector_aligned(bs) || bs > kPoolBytes) {
        return bad_param(c, "bad-number", "bs");
    }
    if (!c.get_u64("seed", 1, &seed)) {
        return bad_param(c, "bad-number", "seed");
    }
    if (!c.get_u64("depth", 1, &depth) || depth == 0 || depth > kMaxDepth ||
        depth * bs > kPoolBytes) {
        return bad_param(c, "bad-number", "depth");
    }
    if (!c.get_u64("verify-only", 0, &verify_only) || verify_only > 1) {
        return bad_param(c, "bad-number", "verify-only");
    }
    if (const uint8_t st = start(c, khz, 1, false, 10'000)) {
        return st;
    }
    if (offset + bytes > disk_bytes() || offset + bytes < offset) {
        return bad_param(c, "past-end", "bytes");
    }
    if (!fit_in_queue(depth, static_cast<uint32_t>(bs))) {
        return bad_param(c, "depth-exceeds-queue", "depth");
    }
    const uint64_t t0 = cpu::rdtsc();
    PassResult w, r;
    int flush = -100;  // not sent
    if (verify_only == 0) {
        if (const char* e = run_pass(true, offset, bytes, bs, depth, seed, &w)) {
            return fail(e);
        }
        if (g_drv.has(kFeatureFlush)) {
            flush = g_drv.sync(0, kTypeFlush, 0, nullptr, 0);
            if (flush == kWaitTimeout) {
                return fail("flush-timeout");
            }
        }
    }
    if (const char* e = run_pass(false, offset, bytes, bs, depth, seed, &r)) {
        return fail(e);
    }
    const uint64_t us = ticks_to_us(cpu::rdtsc() - t0, khz);
    Record rec("write_verify");
    rec.u("offset", offset)
        .u("bytes", bytes)
        .u("bs", bs)
        .u("requests", (bytes + bs - 1) / bs)
        .u("mismatches", r.mismatches)
        .x("first_bad", r.first_bad)
        .u("write_errors", w.errors)
        .u("read_errors", r.errors);
    if (flush == -100) {
        rec.word("flush_status", "none");
    } else {
        rec.u("flush_status", static_cast<uint64_t>(flush));
    }
    serial::emit(rec.u("us", us));
    if (w.errors != 0) {
        return fail("write-error");
    }
    if (flush != -100 && flush != kStatusOk) {
        return fail("flush-error");
    }
    if (r.errors != 0) {
        return fail("read-error");
    }
    if (r.mismatches != 0) {
        return fail("mismatch");
    }
    return kStatusOk;
}

// mode=records offset= count= seed=
uint8_t mode_records(const Cmdline& c, uint64_t khz) {
    uint64_t offset = 0, count = 0, seed = 0;
    if (!c.get_u64("offset", 0, &offset) || !sector_aligned(offset)) {
        return bad_param(c, "bad-number", "offset");
    }
    if (!c.get_u64("count", 0, &count)) {
        return bad_param(c, "bad-number", "count");
    }
    if (!c.get_u64("seed", 1, &seed)) {
        return bad_param(c, "bad-number", "seed");
    }
    if (const uint8_t st = start(c, khz, 1, false, 10'000)) {
        return st;
    }
    const uint64_t end = disk_bytes();
    if (offset >= end || (count != 0 && (count > (end - offset) / pattern::kRecordBytes))) {
        return bad_param(c, "past-end", count != 0 ? "count" : "offset");
    }
    const bool flush = g_drv.has(kFeatureFlush);
    uint64_t written = 0;
    for (uint64_t seq = 1; count == 0 || seq <= count; ++seq) {
        const uint64_t at = pattern::record_offset(offset, seq);
        if (at + pattern::kRecordBytes > end) {
            break;  // count=0: the disk is full
        }
        pattern::make_record(g_pool, seq, seed, at);
        int st = g_drv.sync(0, kTypeOut, at / kSectorSize, g_pool, pattern::kRecordBytes);
        if (st != kStatusOk) {
            return fail_status("record-write", st);
        }
        if (flush) {
            st = g_drv.sync(0, kTypeFlush, 0, nullptr, 0);
            if (st != kStatusOk) {
                return fail_status("record-flush", st);
            }
        }
        serial::emit(Record("record").u("seq", seq));
        written = seq;
    }
    serial::emit(Record("records").u("written", written));
    return kStatusOk;
}

// mode=io rw= bs= depth= seconds= offset= size= queues= seed=
uint8_t mode_io(const Cmdline& c, uint64_t khz) {
    enum Rw : uint8_t { kRead, kWrite, kRandRead, kRandWrite, kRandRw };
    const char* const names[] = {"read", "write", "randread", "randwrite", "randrw"};
    const Str rw_text = c.get("rw", Str{"randread", 8});
    int rw = -1;
    for (int i = 0; i < 5; ++i) {
        if (rw_text.equals(names[i])) {
            rw = i;
        }
    }
    if (rw < 0) {
        return bad_param(c, "bad-rw", "rw");
    }
    uint64_t bs = 0, depth = 0, seconds = 0, offset = 0, size = 0, queues = 0, seed = 0;
    if (!c.get_u64("bs", 4096, &bs) || bs == 0 || !sector_aligned(bs) || bs > kPoolBytes) {
        return bad_param(c, "bad-number", "bs");
    }
    if (!c.get_u64("depth", 1, &depth) || depth == 0 || depth > kMaxDepth ||
        depth * bs > kPoolBytes) {
        return bad_param(c, "bad-number", "depth");
    }
    if (!c.get_u64("seconds", 5, &seconds) || seconds == 0 || seconds > 86'400) {
        return bad_param(c, "bad-number", "seconds");
    }
    if (!c.get_u64("offset", 0, &offset) || !sector_aligned(offset)) {
        return bad_param(c, "bad-number", "offset");
    }
    if (!c.get_u64("size", 0, &size) || !sector_aligned(size)) {
        return bad_param(c, "bad-number", "size");
    }
    if (!c.get_u64("queues", 1, &queues) || queues == 0 || queues > kMaxQueues ||
        queues > depth) {
        return bad_param(c, "bad-number", "queues");
    }
    if (!c.get_u64("seed", 1, &seed)) {
        return bad_param(c, "bad-number", "seed");
    }
    if (const uint8_t st = start(c, khz, static_cast<uint16_t>(queues), false, 10'000)) {
        return st;
    }
    const uint64_t end = disk_bytes();
    if (offset >= end) {
        return bad_param(c, "past-end", "offset");
    }
    if (size == 0) {
        size = end - offset < kIoRegionCap ? end - offset : kIoRegionCap;
    }
    if (offset + size > end || size < bs) {
        return bad_param(c, "bad-region", "size");
    }
    const uint64_t nblocks = size / bs;
    const uint16_t nq = static_cast<uint16_t>(queues);
    if (!fit_in_queue((depth + nq - 1) / nq, static_cast<uint32_t>(bs))) {
        return bad_param(c, "depth-exceeds-queue", "depth");
    }
    const auto len = static_cast<uint32_t>(bs);
    const uint64_t sectors_per_block = bs / kSectorSize;
    const uint64_t base_sector = offset / kSectorSize;

    // Request generator: block and direction of the n-th request.
    uint64_t n_issued = 0;
    uint64_t seq_block = 0;
    auto issue = [&](uint16_t s) -> bool {
        uint64_t block;
        bool write;
        if (rw == kRead || rw == kWrite) {
            block = seq_block;
            seq_block = seq_block + 1 == nblocks ? 0 : seq_block + 1;
            write = rw == kWrite;
        } else {
            const uint64_t r = pattern::mix(seed ^ (n_issued * 0x9e3779b97f4a7c15ull));
            block = r % nblocks;
            write = rw == kRandWrite || (rw == kRandRw && (r >> 63) != 0);
        }
        ++n_issued;
        const uint16_t q = static_cast<uint16_t>(s % nq);
        g_drv.slot(s).t_submit = cpu::rdtsc();
        return g_drv.submit(q, s, write ? kTypeOut : kTypeIn,
                            base_sector + block * sectors_per_block, g_pool + s * bs, len);
    };

    g_hist.clear();
    uint32_t notifies0 = 0, suppressed0 = 0;
    for (uint16_t q = 0; q < nq; ++q) {
        notifies0 += g_drv.queue(q).notifies();
        suppressed0 += g_drv.queue(q).notifies_suppressed();
    }
    const uint64_t drain_ticks = g_drv.timeout_ticks();
    const uint64_t start_tsc = cpu::rdtsc();
    const uint64_t stop_tsc = start_tsc + tsc::ms_to_ticks(seconds * 1000, khz);
    for (uint16_t s = 0; s < depth; ++s) {
        if (!issue(s)) {
            return fail("submit-failed");
        }
    }
    for (uint16_t q = 0; q < nq; ++q) {
        g_drv.kick(q);
    }
    uint64_t in_flight = depth;
    uint64_t ops = 0, errors = 0, last_done = start_tsc;
    bool stopping = false;
    bool bad_id = false;
    bool timed_out = false;
    while (in_flight > 0) {
        const uint64_t now = cpu::rdtsc();
        if (!stopping && now >= stop_tsc) {
            stopping = true;
        }
        if (stopping && now >= stop_tsc + drain_ticks) {
            timed_out = true;
            break;
        }
        bool any = false;
        for (uint16_t q = 0; q < nq; ++q) {
            bool dirty = false;
            uint16_t s = 0;
            uint32_t used_len = 0;
            while (g_drv.try_complete(q, &s, &used_len, &bad_id)) {
                const uint64_t t = cpu::rdtsc();
                g_hist.add(t - g_drv.slot(s).t_submit);
                last_done = t;
                ++ops;
                if (*static_cast<volatile uint8_t*>(&g_drv.slot(s).status) != kStatusOk) {
                    ++errors;
                }
                if (!stopping) {
                    if (!issue(s)) {
                        return fail("submit-failed");
                    }
                    dirty = true;
                } else {
                    --in_flight;
                }
                any = true;
            }
            if (bad_id) {
                return fail("bad-used-id");
            }
            if (dirty) {
                g_drv.kick(q);
            }
        }
        if (!any) {
            cpu::pause();
        }
    }
    const uint64_t elapsed_us = ticks_to_us(last_done - start_tsc, khz);
    const uint64_t div = elapsed_us == 0 ? 1 : elapsed_us;
    auto lat_us = [&](uint64_t ticks) { return ticks_to_us(ticks, khz); };
    serial::emit(Record("io")
                     .word("rw", names[rw])
                     .u("bs", bs)
                     .u("depth", depth)
                     .u("queues", queues)
                     .u("seconds", seconds)
                     .u("ops", ops)
                     .u("errors", errors + (timed_out ? in_flight : 0))
                     .u("iops", ops * 1'000'000 / div)
                     .u("kib_s", ops * sectors_per_block * 500'000 / div)
                     .u("lat_p50_us", lat_us(g_hist.percentile(500)))
                     .u("lat_p90_us", lat_us(g_hist.percentile(900)))
                     .u("lat_p99_us", lat_us(g_hist.percentile(990)))
                     .u("lat_max_us", lat_us(g_hist.max())));
    uint32_t notifies = 0, suppressed = 0;
    for (uint16_t q = 0; q < nq; ++q) {
        notifies += g_drv.queue(q).notifies();
        suppressed += g_drv.queue(q).notifies_suppressed();
    }
    serial::emit(Record("io_detail")
                     .u("elapsed_us", elapsed_us)
                     .u("region_offset", offset)
                     .u("region_bytes", nblocks * bs)
                     .u("indirect", g_drv.indirect() ? 1 : 0)
                     .u("notifies", notifies - notifies0)
                     .u("suppressed", suppressed - suppressed0)
                     .u("lat_p999_us", lat_us(g_hist.percentile(999)))
                     .u("timed_out", timed_out ? in_flight : 0));
    if (timed_out) {
        return fail("timeout");
    }
    return errors == 0 ? kStatusOk : fail("io-errors");
}

// mode=zeroes offset= bytes=
uint8_t mode_zeroes(const Cmdline& c, uint64_t khz) {
    uint64_t offset = 0, bytes = 0;
    if (!c.get_u64("offset", 0, &offset) || !sector_aligned(offset)) {
        return bad_param(c, "bad-number", "offset");
    }
    if (!c.get_u64("bytes", 256 * 1024, &bytes) || bytes == 0 || bytes % 1024 != 0 ||
        bytes > kPoolBytes) {
        return bad_param(c, "bad-number", "bytes");
    }
    uint64_t seed = 0;
    if (!c.get_u64("seed", 1, &seed)) {
        return bad_param(c, "bad-number", "seed");
    }
    if (const uint8_t st = start(c, khz, 1, false, 10'000)) {
        return st;
    }
    if (offset + bytes > disk_bytes()) {
        return bad_param(c, "past-end", "bytes");
    }
    fit_in_queue(1, 65536);
    // 1. The pattern over the range, 64 KiB per request, then FLUSH.
    constexpr uint64_t kChunk = 65536;
    for (uint64_t done = 0; done < bytes; done += kChunk) {
        const uint64_t len = bytes - done < kChunk ? bytes - done : kChunk;
        pattern::fill(g_pool + done, offset + done, len, seed);
        const int st = g_drv.sync(0, kTypeOut, (offset + done) / kSectorSize, g_pool + done,
                                  static_cast<uint32_t>(len));
        if (st != kStatusOk) {
            return fail_status("pattern-write", st);
        }
    }
    if (g_drv.has(kFeatureFlush)) {
        const int st = g_drv.sync(0, kTypeFlush, 0, nullptr, 0);
        if (st != kStatusOk) {
            return fail_status("flush", st);
        }
    }
    const uint64_t half = bytes / 2;
    // 2. DISCARD the first half, WRITE_ZEROES the second, each split at the
    // device's per-request maximum (one segment per request).
    auto ranged = [&](uint32_t type, uint64_t from, uint64_t n_bytes, uint32_t max_sectors) {
        uint64_t sector = from / kSectorSize;
        uint64_t left = n_bytes / kSectorSize;
        const uint64_t step = max_sectors == 0 ? left : max_sectors;
        int worst = kStatusOk;
        while (left > 0) {
            const uint64_t n = left < step ? left : step;
            const int st = g_drv.sync_range(0, type, sector, static_cast<uint32_t>(n), 0);
            if (st < 0) {
                return st;
            }
            if (st != kStatusOk) {
                worst = st;
            }
            sector += n;
            left -= n;
        }
        return worst;
    };
    int discard = kStatusUnsupp;
    if (g_drv.has(kFeatureDiscard)) {
        discard = ranged(kTypeDiscard, offset, half, g_drv.config().max_discard_sectors);
        if (discard < 0) {
            return fail_status("discard", discard);
        }
    }
    int wz = kStatusUnsupp;
    if (g_drv.has(kFeatureWriteZeroes)) {
        wz = ranged(kTypeWriteZeroes, offset + half, half,
                    g_drv.config().max_write_zeroes_sectors);
        if (wz < 0) {
            return fail_status("write-zeroes", wz);
        }
    }
    // 3. Read it all back.
    for (uint64_t done = 0; done < bytes; done += kChunk) {
        const uint64_t len = bytes - done < kChunk ? bytes - done : kChunk;
        const int st = g_drv.sync(0, kTypeIn, (offset + done) / kSectorSize, g_pool + done,
                                  static_cast<uint32_t>(len));
        if (st != kStatusOk) {
            return fail_status("read-back", st);
        }
    }
    const uint64_t discard_nz = pattern::count_nonzero(g_pool, half);
    const uint64_t wz_nz = pattern::count_nonzero(g_pool + half, half);
    serial::emit(Record("zeroes")
                     .word("discard", g_drv.has(kFeatureDiscard) ? status_word(discard)
                                                                 : "unsupported")
                     .u("discard_nonzero_bytes", discard_nz)
                     .word("write_zeroes", g_drv.has(kFeatureWriteZeroes) ? status_word(wz)
                                                                          : "unsupported")
                     .u("write_zeroes_nonzero_bytes", wz_nz));
    if ((g_drv.has(kFeatureDiscard) && discard != kStatusOk && discard != kStatusUnsupp) ||
        (g_drv.has(kFeatureWriteZeroes) && wz != kStatusOk && wz != kStatusUnsupp)) {
        return fail("ioerr");
    }
    if (wz == kStatusOk && wz_nz != 0) {
        return fail("write-zeroes-not-zero");
    }
    return kStatusOk;
}

// mode=ro-check offset=: read one sector, write the same bytes back.
uint8_t mode_ro_check(const Cmdline& c, uint64_t khz) {
    uint64_t offset = 0;
    if (!c.get_u64("offset", 0, &offset) || !sector_aligned(offset)) {
        return bad_param(c, "bad-number", "offset");
    }
    if (const uint8_t st = start(c, khz, 1, false, 10'000)) {
        return st;
    }
    if (offset + kSectorSize > disk_bytes()) {
        return bad_param(c, "past-end", "offset");
    }
    const int rd = g_drv.sync(0, kTypeIn, offset / kSectorSize, g_check_buf[0], kSectorSize);
    if (rd < 0) {
        return fail_status("read", rd);
    }
    // Unchanged data: harmless on a writable disk.
    const int wr = g_drv.sync(0, kTypeOut, offset / kSectorSize, g_check_buf[0], kSectorSize);
    if (wr < 0) {
        return fail_status("write", wr);
    }
    const bool ro = g_drv.has(kFeatureRo);
    serial::emit(Record("ro_check")
                     .u("ro_feature", ro ? 1 : 0)
                     .u("read_status", static_cast<uint64_t>(rd))
                     .u("write_status", static_cast<uint64_t>(wr)));
    if (rd != kStatusOk) {
        return fail("read-failed");
    }
    if (ro && wr != kStatusIoErr) {
        return fail("ro-write-not-ioerr");
    }
    return kStatusOk;
}

// ---------------------------------------------------------------------
// mode=hostile

namespace {

struct Hostile {
    uint16_t q = 0;
    uint64_t case_ticks = 0;
    uint64_t slice_ticks = 0;  // how often wait_case looks at the device status
    uint64_t check_sector = 0;
    uint64_t cases = 0;
    uint64_t checks_failed = 0;
    bool dead = false;
};

virtio::VirtqDesc desc(uint64_t addr, uint32_t len, uint16_t flags, uint16_t next = 0) {
    return virtio::VirtqDesc{addr, len, flags, next};
}

constexpr uint16_t kN = virtio::kDescFlagNext;
constexpr uint16_t kW = virtio::kDescFlagWrite;

void set_header(uint32_t type, uint64_t sector) {
    g_hheader.type = type;
    g_hheader.reserved = 0;
    g_hheader.sector = sector;
}

// A valid 4 KiB write + read-back + compare on the hostile queue.
bool check_alive(Hostile& h, const char* name) {
    const uint64_t seed = 0x405713 + h.cases;
    const uint64_t at = h.check_sector * kSectorSize;
    pattern::fill(g_check_buf[0], at, 4096, seed);
    for (auto& b : g_check_buf[1]) {
        b = 0;
    }
    bool ok = g_drv.sync(h.q, kTypeOut, h.check_sector, g_check_buf[0], 4096) == kStatusOk &&
              g_drv.sync(h.q, kTypeIn, h.check_sector, g_check_buf[1], 4096) == kStatusOk &&
              pattern::check(g_check_buf[1], at, 4096, seed, nullptr) == 0;
    serial::emit(Record("hostile_check").word("case", name).u("ok", ok ? 1 : 0));
    if (!ok) {
        ++h.checks_failed;
        // Leave the next case a working device if we can.
        if (g_drv.reinit() != nullptr) {
            h.dead = true;
        }
    }
    return ok;
}

bool device_needs_reset() { return (g_drv.device().status() & virtio::kStatusNeedsReset) != 0; }

// Waits for the case's chain to come back. A device either returns it or
// gives up on the queue with DEVICE_NEEDS_RESET (virtio 1.2 2.1.2: "enters
// an error state that a reset is needed"); both are outcomes and end the
// wait at once. case_ms only bounds a device that does neither (a hang
// guard, not a deadline a device has to meet: how fast it answers is no
// property of the case).
bool wait_case(const Hostile& h, virtio::Virtqueue& vq, virtio::Virtqueue::Used* used) {
    const uint64_t deadline = cpu::rdtsc() + h.case_ticks;
    for (;;) {
        const uint64_t now = cpu::rdtsc();
        const uint64_t until = deadline - now > h.slice_ticks ? now + h.slice_ticks : deadline;
        if (vq.raw_poll(used, until) == virtio::Virtqueue::PollResult::kOk) {
            return true;
        }
        if (device_needs_reset() || cpu::rdtsc() >= deadline) {
            return false;
        }
    }
}

// Writes descs[0..n) to descriptors 0..n-1, publishes head 0, notifies,
// waits for the outcome (wait_case), reports, recovers (reset + re-init
// when the chain did not come back or the device wants a reset), then
// checks the device.
void run_case(Hostile& h, const char* name, const virtio::VirtqDesc* descs, uint16_t n) {
    if (h.dead) {
        return;
    }
    ++h.cases;
    virtio::Virtqueue& vq = g_drv.queue(h.q);
    g_hstatus = kStatusUnset;
    if (!vq.raw_begin()) {
        serial::emit(Record("error").word("reason", "hostile-queue-busy").word("case", name));
        h.dead = true;
        return;
    }
    for (uint16_t i = 0; i < n; ++i) {
        vq.raw_set_desc(i, descs[i]);
    }
    vq.raw_publish(0);
    vq.raw_notify();
    virtio::Virtqueue::Used used{};
    const bool completed = wait_case(h, vq, &used);
    const uint8_t status = *static_cast<volatile uint8_t*>(&g_hstatus);
    const bool needs_reset = device_needs_reset();
    bool reset = false;
    if (!completed || needs_reset) {
        reset = true;
        if (const char* e = g_drv.reinit()) {
            serial::emit(Record("error").word("reason", e).word("case", name));
            h.dead = true;
        }
    } else {
        vq.raw_end();
    }
    serial::emit(Record("hostile")
                     .word("case", name)
                     .u("completed", completed ? 1 : 0)
                     .u("used_len", completed ? used.len : 0)
                     .u("status", status)
                     .u("needs_reset", needs_reset ? 1 : 0)
                     .u("timeout_reset", reset ? 1 : 0));
    if (!h.dead) {
        check_alive(h, name);
    }
}

void skip_case(Hostile& h, const char* name, const char* why) {
    ++h.cases;
    serial::emit(Record("hostile").word("case", name).word("completed", "skip").word("why", why));
}

}  // namespace

uint8_t mode_hostile(const Cmdline& c, uint64_t khz) {
    uint64_t case_ms = 0, offset = 0;
    // case_ms: the hang guard of one case (wait_case), far above any answer
    // time (a device answers in microseconds; 10 s is generous under ASan).
    if (!c.get_u64("case_ms", 10'000, &case_ms) || case_ms == 0 || case_ms > 600'000) {
        return bad_param(c, "bad-number", "case_ms");
    }
    if (!c.get_u64("offset", 0, &offset) || !sector_aligned(offset)) {
        return bad_param(c, "bad-number", "offset");
    }
    // Two queues when the device has them: the malformed chains go to
    // queue 1, so queue 0 is what a guest OS would keep using.
    if (const uint8_t st = start(c, khz, 2, true, 2'000)) {
        return st;
    }
    if (offset + 4096 > disk_bytes()) {
        return bad_param(c, "past-end", "offset");
    }
    Hostile h;
    h.q = g_drv.queues() >= 2 ? 1 : 0;
    h.case_ticks = tsc::ms_to_ticks(case_ms, khz);
    h.slice_ticks = tsc::ms_to_ticks(1, khz);
    h.check_sector = offset / kSectorSize;
    const uint64_t cap = g_drv.config().capacity;
    const uint16_t qsize = g_drv.queue_size(h.q);
    serial::emit(Record("hostile_setup").u("queue", h.q).u("queue_size", qsize).u("case_ms", case_ms));
    g_drv.use_indirect(false);
    if (!check_alive(h, "initial")) {
        return fail("device-not-working");
    }

    const uint64_t hdr = addr_of(&g_hheader);
    const uint64_t st = addr_of(&g_hstatus);
    const uint64_t data = addr_of(g_pool);
    const uint64_t data2 = addr_of(g_pool + 4096);
    virtio::VirtqDesc d[4];

    set_header(kTypeIn, h.check_sector);
    d[0] = desc(hdr, 16, kN, 1);
    d[1] = desc(data, 512, kW | kN, 2);
    d[2] = desc(st, 1, kW | kN, 0);  // back to the head
    run_case(h, "loop", d, 3);

    set_header(kTypeIn, h.check_sector);
    d[0] = desc(hdr, 16, kN, static_cast<uint16_t>(qsize + 7));
    run_case(h, "next-out-of-range", d, 1);

    set_header(kTypeIn, h.check_sector);
    d[0] = desc(hdr, 16, kN, 1);
    d[1] = desc(64ull << 30, 512, kW | kN, 2);
    d[2] = desc(st, 1, kW);
    run_case(h, "buffer-outside-ram", d, 3);

    if (g_drv.has(virtio::kFeatureIndirectDesc)) {
        // One ring descriptor naming a table of qsize + 2 entries: header,
        // qsize 512-byte reads into the same buffer, status.
        set_header(kTypeIn, h.check_sector);
        const uint16_t entries = static_cast<uint16_t>(qsize + 2);
        g_htable[0] = desc(hdr, 16, kN, 1);
        for (uint16_t i = 1; i <= qsize; ++i) {
            g_htable[i] = desc(data, 512, kW | kN, static_cast<uint16_t>(i + 1));
        }
        g_htable[entries - 1] = desc(st, 1, kW);
        d[0] = desc(addr_of(g_htable), entries * 16u, virtio::kDescFlagIndirect);
        run_case(h, "too-many-descriptors", d, 1);
    } else {
        skip_case(h, "too-many-descriptors", "no-indirect-desc");
    }

    set_header(kTypeIn, h.check_sector);
    d[0] = desc(hdr, 8, kN, 1);
    d[1] = desc(data, 512, kW | kN, 2);
    d[2] = desc(st, 1, kW);
    run_case(h, "short-header", d, 3);

    set_header(kTypeOut, h.check_sector);
    d[0] = desc(hdr, 16, kN, 1);
    d[1] = desc(data, 512, 0);
    run_case(h, "no-status", d, 2);

    set_header(kTypeIn, h.check_sector);
    d[0] = desc(hdr, 16, kN, 1);
    d[1] = desc(data, 512, kW | kN, 2);
    d[2] = desc(st, 1, 0);
    run_case(h, "readonly-status", d, 3);

    set_header(kTypeIn, h.check_sector);
    d[0] = desc(hdr, 16, kN, 1);
    d[1] = desc(data, 512, kW | kN, 2);
    d[2] = desc(data2, 512, kN, 3);
    d[3] = desc(st, 1, kW);
    run_case(h, "readable-after-writable", d, 4);

    set_header(0xff, 0);
    d[0] = desc(hdr, 16, kN, 1);
    d[1] = desc(st, 1, kW);
    run_case(h, "unknown-type", d, 2);

    set_header(kTypeIn, cap);
    d[0] = desc(hdr, 16, kN, 1);
    d[1] = desc(data, 512, kW | kN, 2);
    d[2] = desc(st, 1, kW);
    run_case(h, "past-end", d, 3);

    set_header(kTypeIn, 1ull << 63);
    run_case(h, "sector-overflow", d, 3);

    // 2 GiB from inside RAM: ends far beyond any RAM the probe is given
    // (inside the 4 GiB identity map). OUT, so a device that accepts it
    // reads guest memory rather than scribbling over it.
    set_header(kTypeOut, h.check_sector);
    d[0] = desc(hdr, 16, kN, 1);
    d[1] = desc(data, 0x8000'0000u, kN, 2);
    d[2] = desc(st, 1, kW);
    run_case(h, "huge-length", d, 3);

    set_header(kTypeOut, h.check_sector);
    d[1] = desc(data, 0, kN, 2);
    run_case(h, "zero-length-data", d, 3);

    set_header(kTypeOut, h.check_sector);
    d[1] = desc(data, 100, kN, 2);
    run_case(h, "misaligned-length", d, 3);

    if (g_drv.has(kFeatureDiscard)) {
        set_header(kTypeDiscard, 0);
        g_hrange = DiscardWriteZeroes{h.check_sector, 8, 0xFFFF'FFFEu};
        d[0] = desc(hdr, 16, kN, 1);
        d[1] = desc(addr_of(&g_hrange), sizeof(g_hrange), kN, 2);
        d[2] = desc(st, 1, kW);
        run_case(h, "discard-bad-flags", d, 3);
    } else {
        skip_case(h, "discard-bad-flags", "no-discard");
    }

    // avail-jump: avail idx moves by more than the queue size (§2.7.13.3).
    if (!h.dead) {
        ++h.cases;
        virtio::Virtqueue& vq = g_drv.queue(h.q);
        if (vq.raw_begin()) {
            vq.raw_publish_idx(static_cast<uint16_t>(vq.raw_avail_idx() + qsize + 5));
            vq.raw_notify();
            virtio::Virtqueue::Used used{};
            const bool completed = wait_case(h, vq, &used);
            const bool needs_reset = device_needs_reset();
            serial::emit(Record("hostile")
                             .word("case", "avail-jump")
                             .u("needs_reset", needs_reset ? 1 : 0)
                             .u("completed", completed ? 1 : 0));
            if (const char* e = g_drv.reinit()) {
                serial::emit(Record("error").word("reason", e).word("case", "avail-jump"));
                h.dead = true;
            } else {
                check_alive(h, "avail-jump");
            }
        } else {
            h.dead = true;
        }
    }

    const bool alive = !h.dead && h.checks_failed == 0;
    serial::emit(Record("hostile_done").u("cases", h.cases).u("alive", alive ? 1 : 0));
    return alive ? kStatusOk : fail("device-died");
}

}  // namespace probe::blk
