// Host unit test for the probe guest's pure code (cmdline.cpp, format.cpp,
// virtqueue.cpp with a fake device standing in for the VMM, and the
// virtio-blk pieces: pattern.hpp, blk_request.hpp, histogram.hpp).
// No framework on purpose: it builds from the same sources with the host
// toolchain and prints the "N passed, N failed" line CI reads.
#include <cstdio>
#include <cstring>

#include "tests/guest/blk_request.hpp"
#include "tests/guest/cmdline.hpp"
#include "tests/guest/format.hpp"
#include "tests/guest/histogram.hpp"
#include "tests/guest/pattern.hpp"
#include "tests/guest/virtqueue.hpp"

namespace {

int g_passed = 0;
int g_failed = 0;

void check(bool ok, const char* what, int line) {
    if (ok) {
        ++g_passed;
    } else {
        ++g_failed;
        std::printf("FAIL line %d: %s\n", line, what);
    }
}
#define CHECK(expr) check((expr), #expr, __LINE__)

bool str_is(probe::Str s, const char* want) {
    return s.size == std::strlen(want) && std::memcmp(s.data, want, s.size) == 0;
}

bool line_is(const probe::Line& l, const char* want) {
    return l.size() == std::strlen(want) && std::memcmp(l.data(), want, l.size()) == 0;
}

void test_parse_u64() {
    uint64_t v = 7;
    auto s = [](const char* t) { return probe::Str{t, std::strlen(t)}; };
    CHECK(probe::parse_u64(s("0"), &v) && v == 0);
    CHECK(probe::parse_u64(s("100"), &v) && v == 100);
    CHECK(probe::parse_u64(s("0x1F"), &v) && v == 31);
    CHECK(probe::parse_u64(s("18446744073709551615"), &v) && v == UINT64_MAX);
    v = 7;
    CHECK(!probe::parse_u64(s("18446744073709551616"), &v) && v == 7);
    CHECK(!probe::parse_u64(s(""), &v));
    CHECK(!probe::parse_u64(s("0x"), &v));
    CHECK(!probe::parse_u64(s("12a"), &v));
    CHECK(!probe::parse_u64(s("-1"), &v));
    CHECK(!probe::parse_u64(s("1f"), &v));
}

void test_cmdline() {
    probe::Cmdline c;
    const char* text = "  mode=spin\tms=100  exit=debug flag =x ms=250 a=b=c ";
    c.parse(text, std::strlen(text));
    CHECK(c.size() == 7);
    CHECK(str_is(c.get("mode"), "spin"));
    uint64_t ms = 0;
    CHECK(c.get_u64("ms", 1, &ms) && ms == 250);  // last one wins
    CHECK(c.has("flag") && c.get("flag").empty());
    CHECK(c.has("") && str_is(c.get(""), "x"));  // "=x": empty key
    CHECK(str_is(c.get("a"), "b=c"));             // split at the first '='
    CHECK(!c.has("mod") && !c.has("modes"));
    CHECK(str_is(c.get("nope", probe::Str{"dflt", 4}), "dflt"));
    uint64_t n = 0;
    CHECK(c.get_u64("n", 5, &n) && n == 5);
    CHECK(!c.get_u64("mode", 5, &n));
    CHECK(!c.overflowed());

    probe::Cmdline empty;
    empty.parse("", 0);
    CHECK(empty.size() == 0 && !empty.has("mode"));
    empty.parse(" \t\n", 3);
    CHECK(empty.size() == 0);

    // Parsing stops at `size`, not at a NUL.
    probe::Cmdline part;
    part.parse("mode=print n=3", 9);
    CHECK(part.size() == 1 && str_is(part.get("mode"), "prin"));

    char many[probe::Cmdline::kMaxTokens * 2 + 8];
    size_t len = 0;
    for (size_t i = 0; i < probe::Cmdline::kMaxTokens + 3; ++i) {
        many[len++] = 'k';
        many[len++] = ' ';
    }
    probe::Cmdline over;
    over.parse(many, len);
    CHECK(over.size() == probe::Cmdline::kMaxTokens && over.overflowed());
}

void test_format() {
    probe::Line l;
    l.dec(0).chr(' ').dec(18446744073709551615ull).chr(' ').hex(0).chr(' ').hex(0x336ec578);
    CHECK(line_is(l, "0 18446744073709551615 0x0 0x336ec578"));
    CHECK(!l.truncated());

    probe::Record r("spin");
    r.u("ms", 100).x("rip", 0x100abc).word("source", "pit").quoted("text", "a \"b\"\x01", 6);
    CHECK(line_is(r.line(), "probe: spin ms=100 rip=0x100abc source=pit text=\"a ?b??\""));

    probe::Line big;
    for (size_t i = 0; i < probe::Line::kCapacity + 10; ++i) {
        big.chr('x');
    }
    CHECK(big.size() == probe::Line::kCapacity && big.truncated());
}

// Plays the device side of a split virtqueue (virtio 1.2 §2.7) in host
// memory: the "guest-physical" addresses are host pointers here.
struct FakeDevice {
    struct UsedElem {
        uint32_t id;
        uint32_t len;
    };

    probe::virtio::VirtqDesc* desc;
    volatile uint16_t* avail_idx;
    volatile uint16_t* avail_flags;
    uint16_t* avail_ring;
    volatile uint16_t* used_idx;
    volatile uint16_t* used_flags;
    UsedElem* used_ring;
    uint16_t size;
    uint16_t last_avail = 0;
    uint32_t chains = 0;
    uint32_t bad = 0;
    uint16_t last_chain_len = 0;
    uint32_t indirect = 0;

    explicit FakeDevice(const probe::virtio::Virtqueue& q) : size(q.size()) {
        desc = reinterpret_cast<probe::virtio::VirtqDesc*>(q.desc_paddr());
        auto* a = reinterpret_cast<uint16_t*>(q.avail_paddr());
        avail_flags = a;
        avail_idx = a + 1;
        avail_ring = a + 2;
        auto* u = reinterpret_cast<uint16_t*>(q.used_paddr());
        used_flags = u;
        used_idx = u + 1;
        used_ring = reinterpret_cast<UsedElem*>(u + 2);
    }

    // Serves every published chain: fills writable buffers with 0xA5 and
    // returns len = bytes written (or `len_override`).
    void serve(int64_t len_override = -1, int32_t id_override = -1) {
        while (last_avail != *avail_idx) {
            const uint16_t head = avail_ring[last_avail % size];
            ++last_avail;
            uint32_t written = 0;
            uint16_t i = head;
            uint16_t n = 0;
            // An indirect head: walk its table instead (§2.7.5.3.2).
            const probe::virtio::VirtqDesc* table = desc;
            uint16_t limit = size;
            if ((desc[i].flags & probe::virtio::kDescFlagIndirect) != 0) {
                table = reinterpret_cast<const probe::virtio::VirtqDesc*>(desc[i].addr);
                limit = static_cast<uint16_t>(desc[i].len / sizeof(probe::virtio::VirtqDesc));
                i = 0;
                ++indirect;
            }
            for (;;) {
                const auto& d = table[i];
                if ((d.flags & probe::virtio::kDescFlagWrite) != 0) {
                    std::memset(reinterpret_cast<void*>(d.addr), 0xA5, d.len);
                    written += d.len;
                }
                ++n;
                if ((d.flags & probe::virtio::kDescFlagNext) == 0 || n > limit) {
                    break;
                }
                i = d.next;
            }
            bad += n > limit ? 1 : 0;
            last_chain_len = n;
            const uint16_t slot = *used_idx % size;
            used_ring[slot].id = id_override >= 0 ? static_cast<uint32_t>(id_override) : head;
            used_ring[slot].len = len_override >= 0 ? static_cast<uint32_t>(len_override) : written;
            *used_idx = static_cast<uint16_t>(*used_idx + 1);
            ++chains;
        }
    }
};

probe::virtio::Virtqueue g_vq;  // 4 KiB-aligned rings, as in the guest
uint16_t g_notify = 0xFFFF;     // stands in for the notify register
uint8_t g_data[3][64];

void test_virtqueue() {
    using probe::virtio::Virtqueue;
    Virtqueue& q = g_vq;
    CHECK(!q.init(0) && !q.init(3) && !q.init(Virtqueue::kMaxSize * 2));
    CHECK(q.init(8) && q.size() == 8 && q.free_count() == 8);
    CHECK(q.desc_paddr() % 16 == 0 && q.avail_paddr() % 2 == 0 && q.used_paddr() % 4 == 0);
    q.set_notify(reinterpret_cast<uintptr_t>(&g_notify), 3);
    FakeDevice dev(q);
    CHECK(*dev.avail_flags == probe::virtio::kAvailFlagNoInterrupt);

    // One device-writable buffer: not visible before kick().
    const Virtqueue::Buffer one[1] = {{reinterpret_cast<uintptr_t>(g_data[0]), 64, true}};
    uint16_t head = 99;
    CHECK(q.add(one, 1, &head) && head == 0 && q.free_count() == 7);
    dev.serve();
    CHECK(dev.chains == 0);
    CHECK(q.kick() && g_notify == 3 && q.notifies() == 1);
    Virtqueue::Used used{};
    CHECK(q.poll(&used, 0) == Virtqueue::PollResult::kTimeout);  // device not run yet
    dev.serve();
    CHECK(q.poll(&used, UINT64_MAX) == Virtqueue::PollResult::kOk && used.id == 0 &&
          used.len == 64 && g_data[0][63] == 0xA5 && q.free_count() == 8);

    // A chain of three: read-only, writable, writable.
    const Virtqueue::Buffer three[3] = {{reinterpret_cast<uintptr_t>(g_data[0]), 16, false},
                                        {reinterpret_cast<uintptr_t>(g_data[1]), 32, true},
                                        {reinterpret_cast<uintptr_t>(g_data[2]), 8, true}};
    CHECK(q.add(three, 3, &head) && q.free_count() == 5);
    q.kick();
    dev.serve();
    CHECK(dev.last_chain_len == 3);
    CHECK(q.poll(&used, UINT64_MAX) == Virtqueue::PollResult::kOk && used.id == head &&
          used.len == 40 && q.free_count() == 8);

    // Exhaustion, then everything back.
    uint16_t heads[8];
    for (uint16_t i = 0; i < 8; ++i) {
        CHECK(q.add(one, 1, &heads[i]));
    }
    CHECK(!q.add(one, 1, &head) && q.free_count() == 0);
    CHECK(!q.add(one, 0, &head));
    q.kick();
    dev.serve();
    for (uint16_t i = 0; i < 8; ++i) {
        CHECK(q.poll(&used, UINT64_MAX) == Virtqueue::PollResult::kOk && used.id == heads[i]);
    }
    CHECK(q.free_count() == 8);

    // Indices wrap at 2^16 (§2.7.6, §2.7.8): go past it with chains of 2.
    const Virtqueue::Buffer two[2] = {{reinterpret_cast<uintptr_t>(g_data[1]), 4, true},
                                      {reinterpret_cast<uintptr_t>(g_data[2]), 4, true}};
    bool all_ok = true;
    for (uint32_t i = 0; i < 70'000; ++i) {
        all_ok = all_ok && q.add(two, 2, &head);
        q.kick();
        dev.serve();
        all_ok = all_ok && q.poll(&used, UINT64_MAX) == Virtqueue::PollResult::kOk &&
                 used.id == head && used.len == 8;
    }
    CHECK(all_ok && q.free_count() == 8 && dev.bad == 0);

    // The device's VIRTQ_USED_F_NO_NOTIFY suppresses the notify write.
    *dev.used_flags = probe::virtio::kUsedFlagNoNotify;
    g_notify = 0xFFFF;
    CHECK(q.add(one, 1, &head) && !q.kick() && g_notify == 0xFFFF &&
          q.notifies_suppressed() == 1);
    *dev.used_flags = 0;
    dev.serve();
    CHECK(q.poll(&used, UINT64_MAX) == Virtqueue::PollResult::kOk);

    // A used id that is not an outstanding head is reported, not freed.
    CHECK(q.add(one, 1, &head));
    q.kick();
    dev.serve(-1, static_cast<int32_t>((head + 1) % 8));
    CHECK(q.poll(&used, UINT64_MAX) == Virtqueue::PollResult::kBadId && q.free_count() == 7);
}

// The pattern contract (pattern.hpp): mix() is splitmix64's finalizer;
// mix(0) is splitmix64's well-known first output for seed 0.
void test_pattern() {
    namespace pt = probe::pattern;
    CHECK(pt::mix(0) == 0xe220a8397b1dcdafull);
    CHECK(pt::mix(1) == 0x910a2dec89025cc1ull);
    CHECK(pt::word(7, 0x100000) == 0x692cf2f907c245e8ull);  // computed independently (Python)
    alignas(8) static uint8_t buf[4096];
    pt::fill(buf, 0x100000, sizeof(buf), 7);
    uint64_t w0 = 0;
    std::memcpy(&w0, buf, 8);
    CHECK(w0 == 0x692cf2f907c245e8ull);
    CHECK(buf[0] == 0xe8 && buf[7] == 0x69);  // little-endian on disk
    uint64_t first_bad = 123;
    CHECK(pt::check(buf, 0x100000, sizeof(buf), 7, &first_bad) == 0 && first_bad == 123);
    CHECK(pt::check(buf, 0x100000, sizeof(buf), 8, nullptr) == sizeof(buf) / 8);  // other seed
    buf[1000] ^= 1;
    buf[3000] ^= 0x80;
    CHECK(pt::check(buf, 0x100000, sizeof(buf), 7, &first_bad) == 2 && first_bad == 0x100000 + 1000 / 8 * 8);
    CHECK(pt::count_nonzero(buf, sizeof(buf)) > 4000);
    static uint8_t zeros[100];
    CHECK(pt::count_nonzero(zeros, sizeof(zeros)) == 0);

    // Record 1 at offset 4096, seed 5.
    alignas(8) static uint8_t rec[512];
    pt::make_record(rec, 1, 5, pt::record_offset(4096, 1));
    CHECK(std::memcmp(rec, "HCNREC01", 8) == 0);
    uint64_t v = 0;
    std::memcpy(&v, rec + 8, 8);
    CHECK(v == 1);
    std::memcpy(&v, rec + 16, 8);
    CHECK(v == 5);
    std::memcpy(&v, rec + 24, 8);
    CHECK(v == 0xfcde4c7830322c37ull);  // pt::mix(5 ^ (4096 + 24)), Python
    // Words 3..63 are the write-verify pattern of that sector.
    CHECK(pt::check(rec + 24, 4096 + 24, 512 - 24, 5, nullptr) == 0);
    CHECK(pt::record_offset(4096, 3) == 4096 + 1024);
    CHECK(pt::check_record(rec, 1, 5, 4096));
    CHECK(!pt::check_record(rec, 2, 5, 4096) && !pt::check_record(rec, 1, 6, 4096) &&
          !pt::check_record(rec, 1, 5, 4608));
    rec[511] ^= 1;
    CHECK(!pt::check_record(rec, 1, 5, 4096));
}

void test_blk_request() {
    using namespace probe::blk;
    using probe::virtio::Virtqueue;
    Virtqueue::Buffer b[8];
    // IN of 8 KiB, no limits: header (readable), one writable segment, status.
    uint16_t n = build_chain(0x1000, kTypeIn, 0x10000, 8192, 0x2000, {}, b, 8);
    CHECK(n == 3);
    CHECK(b[0].addr == 0x1000 && b[0].len == 16 && !b[0].device_writes);
    CHECK(b[1].addr == 0x10000 && b[1].len == 8192 && b[1].device_writes);
    CHECK(b[2].addr == 0x2000 && b[2].len == 1 && b[2].device_writes);
    // OUT split at size_max 4096: data readable.
    n = build_chain(0x1000, kTypeOut, 0x10000, 10000, 0x2000, {4096, 0}, b, 8);
    CHECK(n == 5 && b[1].len == 4096 && b[2].addr == 0x11000 && b[3].len == 10000 - 8192 &&
          !b[1].device_writes && !b[3].device_writes && b[4].device_writes);
    CHECK(segments_for(10000, {4096, 0}) == 3 && segments_for(10000, {}) == 1 &&
          segments_for(0, {4096, 0}) == 0);
    // seg_max and max_out limits.
    CHECK(build_chain(0x1000, kTypeOut, 0x10000, 10000, 0x2000, {4096, 2}, b, 8) == 0);
    CHECK(build_chain(0x1000, kTypeOut, 0x10000, 10000, 0x2000, {4096, 3}, b, 4) == 0);
    CHECK(build_chain(0x1000, kTypeOut, 0x10000, 10000, 0x2000, {4096, 3}, b, 5) == 5);
    // FLUSH: header + status only; GET_ID: writable data; DISCARD: readable payload.
    CHECK(build_chain(0x1000, kTypeFlush, 0, 0, 0x2000, {}, b, 8) == 2 && b[1].len == 1);
    CHECK(build_chain(0x1000, kTypeGetId, 0x3000, kIdBytes, 0x2000, {}, b, 8) == 3 &&
          b[1].device_writes && b[1].len == 20);
    CHECK(build_chain(0x1000, kTypeDiscard, 0x3000, 16, 0x2000, {}, b, 8) == 3 &&
          !b[1].device_writes);
    CHECK(data_device_writes(kTypeIn) && !data_device_writes(kTypeOut) &&
          !data_device_writes(kTypeWriteZeroes));
    // Wire layout (§5.2.6).
    ReqHeader h{kTypeWriteZeroes, 0, 0x1122334455667788ull};
    uint8_t raw[16];
    std::memcpy(raw, &h, 16);
    CHECK(raw[0] == 13 && raw[4] == 0 && raw[8] == 0x88 && raw[15] == 0x11);
    DiscardWriteZeroes r{7, 8, kFlagUnmap};
    std::memcpy(raw, &r, 16);
    CHECK(raw[0] == 7 && raw[8] == 8 && raw[12] == 1);
    // Indirect table: NEXT links i -> i+1, WRITE kept, last without NEXT.
    probe::virtio::VirtqDesc t[5];
    n = build_chain(0x1000, kTypeIn, 0x10000, 10000, 0x2000, {4096, 0}, b, 8);
    to_indirect(b, n, t);
    CHECK(t[0].flags == probe::virtio::kDescFlagNext && t[0].next == 1 && t[0].len == 16);
    CHECK(t[1].flags == (probe::virtio::kDescFlagNext | probe::virtio::kDescFlagWrite));
    CHECK(t[4].flags == probe::virtio::kDescFlagWrite && t[4].addr == 0x2000 && t[3].next == 4);
}

void test_histogram() {
    static probe::Histogram h;
    using H = probe::Histogram;
    CHECK(H::bucket_of(0) == 0 && H::bucket_of(15) == 15 && H::bucket_of(16) == 16);
    CHECK(H::bucket_of(31) == 31 && H::bucket_of(32) == 32 && H::bucket_of(33) == 32);
    CHECK(H::bucket_of(UINT64_MAX) == H::kBuckets - 1);
    CHECK(H::upper_bound(16) == 16 && H::upper_bound(32) == 33 && H::upper_bound(H::kBuckets - 1) == UINT64_MAX);
    // Every value lies within its bucket, and the bucket is <= 1/16 wide.
    bool ok = true;
    for (uint64_t v = 1; v < (1ull << 62); v = v * 3 + 1) {
        const unsigned b = H::bucket_of(v);
        const uint64_t ub = H::upper_bound(b);
        const uint64_t lb = b == 0 ? 0 : H::upper_bound(b - 1) + 1;
        ok = ok && lb <= v && v <= ub && (ub - lb) * 16 <= lb + 16;
    }
    CHECK(ok);
    CHECK(h.percentile(500) == 0);
    for (uint64_t v = 1; v <= 1000; ++v) {
        h.add(v * 100);  // 100 .. 100000
    }
    CHECK(h.count() == 1000 && h.max() == 100000);
    const uint64_t p50 = h.percentile(500);
    const uint64_t p99 = h.percentile(990);
    CHECK(p50 >= 50000 && p50 <= 50000 + 50000 / 16);
    CHECK(p99 >= 99000 && p99 <= 99000 + 99000 / 16);
    CHECK(h.percentile(1000) == 100000);
    h.clear();
    CHECK(h.count() == 0 && h.max() == 0);
}

// Indirect chains, try_poll and the raw (mode=hostile) API.
void test_virtqueue_blk() {
    using probe::virtio::Virtqueue;
    using probe::virtio::VirtqDesc;
    Virtqueue& q = g_vq;
    CHECK(q.init(8));
    q.set_notify(reinterpret_cast<uintptr_t>(&g_notify), 1);
    FakeDevice dev(q);
    Virtqueue::Used used{};
    uint16_t head = 0;

    // A blk-style chain through an indirect table.
    alignas(16) static VirtqDesc table[3];
    alignas(16) static probe::blk::ReqHeader hdr{probe::blk::kTypeIn, 0, 0};
    static uint8_t status = 0xEE;
    Virtqueue::Buffer b[3];
    const uint16_t n = probe::blk::build_chain(reinterpret_cast<uintptr_t>(&hdr), probe::blk::kTypeIn,
                                               reinterpret_cast<uintptr_t>(g_data[0]), 64,
                                               reinterpret_cast<uintptr_t>(&status), {}, b, 3);
    probe::blk::to_indirect(b, n, table);
    CHECK(q.add_indirect(reinterpret_cast<uintptr_t>(table), n, &head) && q.free_count() == 7 &&
          q.in_flight() == 1);
    CHECK(!q.add_indirect(reinterpret_cast<uintptr_t>(table), 0, &head));
    CHECK(q.try_poll(&used) == Virtqueue::PollResult::kEmpty);
    q.kick();
    dev.serve();
    CHECK(dev.indirect == 1 && dev.last_chain_len == 3);
    CHECK(q.try_poll(&used) == Virtqueue::PollResult::kOk && used.id == head && used.len == 65 &&
          status == 0xA5 && q.free_count() == 8 && q.in_flight() == 0);

    // Raw session: refused while a chain is in flight; add() refused inside.
    const Virtqueue::Buffer one[1] = {{reinterpret_cast<uintptr_t>(g_data[0]), 64, true}};
    CHECK(q.add(one, 1, &head));
    CHECK(!q.raw_begin());
    q.kick();
    dev.serve();
    CHECK(q.poll(&used, UINT64_MAX) == Virtqueue::PollResult::kOk);
    CHECK(q.raw_begin());
    CHECK(!q.add(one, 1, &head));
    // A looping chain 5 -> 6 -> 5: the fake device stops after `size`.
    q.raw_set_desc(5, VirtqDesc{reinterpret_cast<uintptr_t>(g_data[1]), 8, 3, 6});
    q.raw_set_desc(6, VirtqDesc{reinterpret_cast<uintptr_t>(g_data[2]), 8, 3, 5});
    g_notify = 0;
    q.raw_publish(5);
    q.raw_notify();
    CHECK(g_notify == 1);
    dev.serve();
    CHECK(dev.bad == 1);
    CHECK(q.raw_poll(&used, UINT64_MAX) == Virtqueue::PollResult::kOk && used.id == 5);
    CHECK(q.raw_poll(&used, 0) == Virtqueue::PollResult::kTimeout);
    q.raw_end();
    CHECK(q.free_count() == 8 && q.in_flight() == 0);
    // Back to normal: the whole queue is usable again.
    uint16_t heads[8];
    bool ok = true;
    for (auto& h : heads) {
        ok = ok && q.add(one, 1, &h);
    }
    q.kick();
    dev.serve();
    for (uint16_t h : heads) {
        ok = ok && q.poll(&used, UINT64_MAX) == Virtqueue::PollResult::kOk && used.id == h;
    }
    CHECK(ok && q.free_count() == 8);
    // A corrupt avail idx is published verbatim; raw_end() restores ours.
    CHECK(q.raw_begin());
    const uint16_t idx = q.raw_avail_idx();
    q.raw_publish_idx(static_cast<uint16_t>(idx + 8 + 5));
    CHECK(*dev.avail_idx == static_cast<uint16_t>(idx + 13));
    q.raw_end();
    CHECK(*dev.avail_idx == idx);
}

}  // namespace

int main() {
    test_parse_u64();
    test_cmdline();
    test_format();
    test_virtqueue();
    test_pattern();
    test_blk_request();
    test_histogram();
    test_virtqueue_blk();
    std::printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
