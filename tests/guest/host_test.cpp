// Host unit test for the probe guest's pure code (cmdline.cpp, format.cpp,
// virtqueue.cpp with a fake device standing in for the VMM).
// No framework on purpose: it builds from the same sources with the host
// toolchain and prints the "N passed, N failed" line CI reads.
#include <cstdio>
#include <cstring>

#include "tests/guest/cmdline.hpp"
#include "tests/guest/format.hpp"
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
            for (;;) {
                const auto& d = desc[i];
                if ((d.flags & probe::virtio::kDescFlagWrite) != 0) {
                    std::memset(reinterpret_cast<void*>(d.addr), 0xA5, d.len);
                    written += d.len;
                }
                ++n;
                if ((d.flags & probe::virtio::kDescFlagNext) == 0 || n > size) {
                    break;
                }
                i = d.next;
            }
            bad += n > size ? 1 : 0;
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

}  // namespace

int main() {
    test_parse_u64();
    test_cmdline();
    test_format();
    test_virtqueue();
    std::printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
