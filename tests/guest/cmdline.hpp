// The probe's command line (PVH: hvm_start_info.cmdline_paddr).
//
// Grammar (tokens separated by one or more spaces, tabs or newlines):
//
//     cmdline := token*
//     token   := key ['=' value]      key: no '=' or blank; value: no blank
//
// No quoting or escapes. A token without '=' has an empty value. When a
// key repeats, the last one wins (as Linux does). Unknown keys are kept
// and ignored by the probe, so a loader may add its own (QEMU microvm
// appends e.g. virtio_mmio.device=... when it has such devices).
//
// Pure code, no libc and no I/O: builds for the guest and for the host
// unit test (host_test.cpp).
#pragma once

#include <cstddef>
#include <cstdint>

namespace probe {

// A view of chars owned by someone else (std::string_view without the
// hosted-library baggage).
struct Str {
    const char* data = nullptr;
    size_t size = 0;

    bool empty() const { return size == 0; }
    bool equals(const char* s) const;  // whole-string compare with a C string
};

// Parses an unsigned decimal number, or hex with a 0x prefix. Fails on an
// empty string, stray characters or overflow.
bool parse_u64(Str text, uint64_t* out);

class Cmdline {
  public:
    static constexpr size_t kMaxTokens = 32;

    struct Token {
        Str key;
        Str value;
    };

    // Splits text[0, size) into tokens. Does not copy: `text` must outlive
    // this object. Tokens past kMaxTokens are dropped (overflowed()).
    void parse(const char* text, size_t size);

    bool has(const char* key) const { return find(key) != nullptr; }
    // The value of `key`, or `fallback` if the key is absent.
    Str get(const char* key, Str fallback = {}) const;
    // The value of `key` as a number. Returns false, leaving *out alone,
    // if the key is present but its value is not a number (parse_u64);
    // sets *out = fallback if the key is absent.
    bool get_u64(const char* key, uint64_t fallback, uint64_t* out) const;

    size_t size() const { return count_; }
    const Token& at(size_t i) const { return tokens_[i]; }
    bool overflowed() const { return overflowed_; }

  private:
    const Token* find(const char* key) const;

    Token tokens_[kMaxTokens];
    size_t count_ = 0;
    bool overflowed_ = false;
};

}  // namespace probe
