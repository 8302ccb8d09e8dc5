// Host unit test for the probe guest's pure code (cmdline.cpp, format.cpp).
// No framework on purpose: it builds from the same sources with the host
// toolchain and prints the "N passed, N failed" line CI reads.
#include <cstdio>
#include <cstring>

#include "tests/guest/cmdline.hpp"
#include "tests/guest/format.hpp"

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

}  // namespace

int main() {
    test_parse_u64();
    test_cmdline();
    test_format();
    std::printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
