#include "tests/guest/virtio_rng.hpp"

#include "tests/guest/cpuid.hpp"
#include "tests/guest/exit.hpp"
#include "tests/guest/format.hpp"
#include "tests/guest/mmio.hpp"
#include "tests/guest/pci.hpp"
#include "tests/guest/serial.hpp"
#include "tests/guest/tsc.hpp"
#include "tests/guest/virtio_pci.hpp"
#include "tests/guest/virtqueue.hpp"

namespace probe::rng {
namespace {

constexpr uint64_t kTimeoutMs = 1000;  // per wait; the device answers in microseconds

// Static, so identity-mapped: the addresses are guest-physical (§2.7).
constinit virtio::Virtqueue g_queue;
alignas(64) constinit uint8_t g_single[kMaxBytes];     // request 1
alignas(64) constinit uint8_t g_chain_a[kMaxBytes / 2];  // request 2, first descriptor
alignas(64) constinit uint8_t g_chain_b[kMaxBytes / 2];  // request 2, second descriptor

uint8_t error(const char* reason) {
    serial::emit(Record("error").word("reason", reason).word("device", "rng"));
    return kStatusFailure;
}

uint64_t ticks_to_us(uint64_t ticks, uint64_t khz) { return khz == 0 ? 0 : ticks * 1000 / khz; }

uint32_t count_nonzero(const uint8_t* p, uint32_t n) {
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; ++i) {
        k += p[i] != 0 ? 1 : 0;
    }
    return k;
}

// "0x" and 16 hex digits: bytes 0..7 in buffer order.
void format_first8(const uint8_t* p, char (&out)[19]) {
    static constexpr char kDigits[] = "0123456789abcdef";
    out[0] = '0';
    out[1] = 'x';
    for (int i = 0; i < 8; ++i) {
        out[2 + 2 * i] = kDigits[p[i] >> 4];
        out[3 + 2 * i] = kDigits[p[i] & 15];
    }
    out[18] = '\0';
}

// One request: posts `n` device-writable buffers as one chain, kicks,
// polls, reports, checks. bufs[i].addr are identity-mapped pointers.
const char* request(const virtio::Virtqueue::Buffer* bufs, uint16_t n, uint64_t timeout,
                    uint64_t khz) {
    uint32_t total = 0;
    for (uint16_t i = 0; i < n; ++i) {
        auto* p = reinterpret_cast<uint8_t*>(static_cast<uintptr_t>(bufs[i].addr));
        for (uint32_t k = 0; k < bufs[i].len; ++k) {
            p[k] = 0;  // so "all zero" means "not written"
        }
        total += bufs[i].len;
    }
    const uint64_t start = cpu::rdtsc();
    uint16_t head = 0;
    if (!g_queue.add(bufs, n, &head)) {
        return "queue-full";
    }
    g_queue.kick();
    virtio::Virtqueue::Used used{};
    const auto polled = g_queue.poll(&used, start + timeout);
    const uint64_t elapsed = cpu::rdtsc() - start;
    if (polled == virtio::Virtqueue::PollResult::kTimeout) {
        return "timeout";
    }
    if (polled != virtio::Virtqueue::PollResult::kOk || used.id != head) {
        return "bad-used-id";
    }
    // Count over the bytes the device says it wrote, in chain order.
    const uint32_t written = used.len < total ? used.len : total;
    uint32_t nonzero = 0;
    uint32_t nonzero_last = 0;
    uint32_t left = written;
    for (uint16_t i = 0; i < n && left > 0; ++i) {
        const uint32_t len = bufs[i].len < left ? bufs[i].len : left;
        nonzero_last = count_nonzero(reinterpret_cast<const uint8_t*>(bufs[i].addr), len);
        nonzero += nonzero_last;
        left -= len;
    }
    char first8[19];
    format_first8(reinterpret_cast<const uint8_t*>(bufs[0].addr), first8);
    serial::emit(Record("rng")
                     .u("bytes", total)
                     .u("used_len", used.len)
                     .u("nonzero", nonzero)
                     .word("first8", first8)
                     .u("descs", n)
                     .u("us", ticks_to_us(elapsed, khz)));
    if (used.len == 0) {
        return "used-len-zero";
    }
    if (used.len > total) {
        return "used-len-too-big";  // §2.7.8.1: len counts only bytes written
    }
    if (nonzero == 0) {
        return "all-zero";
    }
    if (n > 1 && written > bufs[0].len && nonzero_last == 0) {
        return "chain-second-buffer-zero";
    }
    return nullptr;
}

}  // namespace

uint8_t run(const Options& options) {
    const uint64_t khz = options.tsc_khz;
    const uint64_t timeout = tsc::ms_to_ticks(kTimeoutMs, khz);
    const uint64_t t0 = cpu::rdtsc();
    const mmio::Counters m0 = mmio::counters();
    const uint32_t c0 = pci::config_accesses();

    // §3.1.1 through the core; each step names its failure.
    virtio::Device dev(timeout);
    if (!dev.find(virtio::kDeviceIdRng, virtio::kTransitionalIdRng)) {
        return error("device-missing");
    }
    if (const char* e = dev.map()) {
        return error(e);
    }
    const uint64_t t_mapped = cpu::rdtsc();  // config-space phase done; MMIO from here
    if (const char* e = dev.negotiate(/*wanted=*/0, options.force_features)) {
        return error(e);  // the entropy device has no feature bits (§5.4.3)
    }
    if (const char* e = dev.setup_queue(0, g_queue)) {
        dev.set_failed();
        return error(e);
    }
    if (const char* e = dev.driver_ok()) {
        return error(e);
    }
    const uint64_t t1 = cpu::rdtsc();
    const mmio::Counters m1 = mmio::counters();
    const uint32_t c1 = pci::config_accesses();

    const pci::Function fn = dev.function();
    char bdf[8] = {'0', '0', ':', "0123456789abcdef"[fn.dev >> 4],
                   "0123456789abcdef"[fn.dev & 15], '.', static_cast<char>('0' + fn.fn), 0};
    serial::emit(Record("virtio")
                     .word("device", "rng")
                     .x("features", dev.device_features())
                     .u("queue_size", g_queue.size())
                     .x("accepted", dev.driver_features())
                     .word("bdf", bdf)
                     .x("pci_id", dev.device_id())
                     .x("common", dev.common_cfg_paddr())
                     .u("bars_assigned", dev.bars_assigned()));

    const auto bytes = static_cast<uint32_t>(options.bytes);
    const uint32_t half = bytes / 2;
    const virtio::Virtqueue::Buffer single[1] = {
        {reinterpret_cast<uintptr_t>(g_single), bytes, true}};
    const virtio::Virtqueue::Buffer chain[2] = {
        {reinterpret_cast<uintptr_t>(g_chain_a), half, true},
        {reinterpret_cast<uintptr_t>(g_chain_b), bytes - half, true}};
    if (const char* e = request(single, 1, timeout, khz)) {
        dev.set_failed();
        return error(e);
    }
    if (const char* e = request(chain, 2, timeout, khz)) {
        dev.set_failed();
        return error(e);
    }
    const uint64_t t3 = cpu::rdtsc();  // includes the report lines' serial output
    const mmio::Counters m2 = mmio::counters();

    serial::emit(Record("virtio_cost")
                     .u("init_us", ticks_to_us(t1 - t0, khz))
                     .u("find_map_us", ticks_to_us(t_mapped - t0, khz))
                     .u("handshake_us", ticks_to_us(t1 - t_mapped, khz))
                     .u("init_mmio_reads", m1.reads - m0.reads)
                     .u("init_mmio_writes", m1.writes - m0.writes)
                     .u("init_cfg", c1 - c0)
                     .u("req_mmio", (m2.reads - m1.reads) + (m2.writes - m1.writes))
                     .u("notifies", g_queue.notifies())
                     .u("suppressed", g_queue.notifies_suppressed())
                     .u("total_us", ticks_to_us(t3 - t0, khz))
                     .u("tsc_done", t3));
    return kStatusOk;
}

}  // namespace probe::rng
