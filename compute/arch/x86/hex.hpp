// hex(): "0x1f00" for error messages about guest addresses and sizes (g++ 12 has no <format>).
#pragma once

#include <charconv>
#include <cstdint>
#include <string>

namespace hcnode::compute::x86 {

inline std::string hex(uint64_t value) {
  char buf[2 + 16];
  buf[0] = '0';
  buf[1] = 'x';
  const auto res = std::to_chars(buf + 2, buf + sizeof buf, value, 16);
  return std::string(buf, res.ptr);
}

// "12 MiB" when size is a whole number of MiB, "12345 bytes" otherwise: what an operator reads.
inline std::string human_size(uint64_t size) {
  constexpr uint64_t kMiB = 1ull << 20;
  if (size % kMiB == 0) {
    return std::to_string(size / kMiB) + " MiB";
  }
  if (size > kMiB) {
    return std::to_string(size / kMiB) + "." + std::to_string((size % kMiB) * 10 / kMiB) + " MiB";
  }
  return std::to_string(size) + " bytes";
}

}  // namespace hcnode::compute::x86
