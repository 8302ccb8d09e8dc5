#include "tests/guest/format.hpp"

namespace probe {

size_t cstr_len(const char* s) {
    size_t n = 0;
    while (s[n] != '\0') {
        ++n;
    }
    return n;
}

Line& Line::chr(char c) {
    if (len_ < kCapacity) {
        buf_[len_++] = c;
    } else {
        truncated_ = true;
    }
    return *this;
}

Line& Line::str(const char* s, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        chr(s[i]);
    }
    return *this;
}

Line& Line::str(const char* s) { return str(s, cstr_len(s)); }

Line& Line::dec(uint64_t v) {
    char digits[20];  // 2^64 - 1 has 20 decimal digits
    size_t n = 0;
    do {
        digits[n++] = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0) {
        chr(digits[--n]);
    }
    return *this;
}

Line& Line::hex(uint64_t v) {
    static constexpr char kDigits[] = "0123456789abcdef";
    str("0x");
    int shift = 60;
    while (shift > 0 && ((v >> shift) & 0xf) == 0) {
        shift -= 4;
    }
    for (; shift >= 0; shift -= 4) {
        chr(kDigits[(v >> shift) & 0xf]);
    }
    return *this;
}

Record::Record(const char* record) { line_.str("probe: ").str(record); }

Record& Record::key(const char* key) {
    line_.chr(' ').str(key).chr('=');
    return *this;
}

Record& Record::u(const char* k, uint64_t value) {
    key(k).line_.dec(value);
    return *this;
}

Record& Record::x(const char* k, uint64_t value) {
    key(k).line_.hex(value);
    return *this;
}

Record& Record::word(const char* k, const char* value) {
    key(k).line_.str(value);
    return *this;
}

Record& Record::quoted(const char* k, const char* value, size_t n) {
    key(k).line_.chr('"');
    for (size_t i = 0; i < n; ++i) {
        const char c = value[i];
        line_.chr(c >= ' ' && c <= '~' && c != '"' ? c : '?');
    }
    line_.chr('"');
    return *this;
}

}  // namespace probe
