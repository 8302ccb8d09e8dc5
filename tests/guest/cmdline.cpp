#include "tests/guest/cmdline.hpp"

namespace probe {
namespace {

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

int hex_digit(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

}  // namespace

bool Str::equals(const char* s) const {
    size_t i = 0;
    for (; i < size; ++i) {
        if (s[i] == '\0' || s[i] != data[i]) {
            return false;
        }
    }
    return s[i] == '\0';
}

bool parse_u64(Str text, uint64_t* out) {
    uint64_t base = 10;
    size_t i = 0;
    if (text.size > 2 && text.data[0] == '0' && (text.data[1] == 'x' || text.data[1] == 'X')) {
        base = 16;
        i = 2;
    }
    if (i == text.size) {
        return false;
    }
    uint64_t value = 0;
    for (; i < text.size; ++i) {
        const int d = hex_digit(text.data[i]);
        if (d < 0 || static_cast<uint64_t>(d) >= base) {
            return false;
        }
        if (value > (UINT64_MAX - static_cast<uint64_t>(d)) / base) {
            return false;  // overflow
        }
        value = value * base + static_cast<uint64_t>(d);
    }
    *out = value;
    return true;
}

void Cmdline::parse(const char* text, size_t size) {
    count_ = 0;
    overflowed_ = false;
    size_t i = 0;
    while (i < size) {
        while (i < size && is_blank(text[i])) {
            ++i;
        }
        if (i == size) {
            break;
        }
        const size_t start = i;
        size_t eq = size;  // index of the first '=', if any
        while (i < size && !is_blank(text[i])) {
            if (text[i] == '=' && eq == size) {
                eq = i;
            }
            ++i;
        }
        if (count_ == kMaxTokens) {
            overflowed_ = true;
            continue;
        }
        Token& t = tokens_[count_++];
        if (eq == size) {
            t.key = Str{text + start, i - start};
            t.value = Str{text + i, 0};
        } else {
            t.key = Str{text + start, eq - start};
            t.value = Str{text + eq + 1, i - eq - 1};
        }
    }
}

const Cmdline::Token* Cmdline::find(const char* key) const {
    for (size_t i = count_; i > 0; --i) {  // last one wins
        if (tokens_[i - 1].key.equals(key)) {
            return &tokens_[i - 1];
        }
    }
    return nullptr;
}

Str Cmdline::get(const char* key, Str fallback) const {
    const Token* t = find(key);
    return t != nullptr ? t->value : fallback;
}

bool Cmdline::get_u64(const char* key, uint64_t fallback, uint64_t* out) const {
    const Token* t = find(key);
    if (t == nullptr) {
        *out = fallback;
        return true;
    }
    return parse_u64(t->value, out);
}

}  // namespace probe
