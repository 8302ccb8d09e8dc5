// Line formatting for the probe's serial reports. Pure code (no I/O, no
// libc), so it also builds and is tested on the host (host_test.cpp).
//
// Report format, one record per line, stable for tests to grep:
//
//     probe: <record> key=value key=value ...\n
//
// <record> is one lower-case word (start_info, tsc, spin, ...). Values are
// decimal integers, 0x-prefixed hex (addresses, registers), bare words, or
// double-quoted strings (e.g. cmdline="mode=spin ms=5"; a '"' or byte
// outside printable ASCII inside is written as '?'). Keys never repeat
// within a line.
#pragma once

#include <cstddef>
#include <cstdint>

namespace probe {

// A fixed-capacity line buffer. Output past the capacity is dropped and
// remembered (truncated()), never written out of bounds.
class Line {
  public:
    static constexpr size_t kCapacity = 256;

    Line& str(const char* s);
    Line& str(const char* s, size_t n);
    Line& chr(char c);
    Line& dec(uint64_t v);
    Line& hex(uint64_t v);  // 0x-prefixed, lower case, no padding

    const char* data() const { return buf_; }
    size_t size() const { return len_; }
    bool truncated() const { return truncated_; }

  private:
    char buf_[kCapacity];
    size_t len_ = 0;
    bool truncated_ = false;
};

// Builds one report line: "probe: <record>" then " key=value" pairs.
// The caller writes line() and a '\n' (see report.hpp).
class Record {
  public:
    explicit Record(const char* record);

    Record& u(const char* key, uint64_t value);           // key=123
    Record& x(const char* key, uint64_t value);           // key=0x7b
    Record& word(const char* key, const char* value);     // key=value
    Record& quoted(const char* key, const char* value, size_t n);  // key="..."

    const Line& line() const { return line_; }

  private:
    Record& key(const char* key);
    Line line_;
};

// strlen without libc.
size_t cstr_len(const char* s);

}  // namespace probe
