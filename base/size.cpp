#include "base/size.hpp"

#include <cctype>
#include <charconv>
#include <cstdio>

namespace hcnode {

Result<uint64_t> parse_size(std::string_view text) {
  auto bad = [&](const char* why) {
    return fail(EINVAL, "size '" + std::string(text) + "': " + why);
  };
  uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ptr == text.data()) {
    return bad("expected a number, e.g. 128M or 2G");
  }
  if (ec == std::errc::result_out_of_range) {
    return bad("too large");
  }
  std::string suffix(ptr, text.data() + text.size());
  for (auto& c : suffix) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  unsigned shift = 0;
  if (suffix.empty() || suffix == "B") {
    shift = 0;
  } else {
    switch (suffix[0]) {
      case 'K': shift = 10; break;
      case 'M': shift = 20; break;
      case 'G': shift = 30; break;
      case 'T': shift = 40; break;
      default: return bad("unknown unit (use K, M, G or T)");
    }
    std::string rest = suffix.substr(1);
    if (!rest.empty() && rest != "B" && rest != "IB") {
      return bad("unknown unit (use K, M, G or T)");
    }
  }
  if (shift > 0 && value > (UINT64_MAX >> shift)) {
    return bad("too large");
  }
  return value << shift;
}

std::string format_size(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  double v = static_cast<double>(bytes);
  while (v >= 1024 && unit < 4) {
    v /= 1024;
    ++unit;
  }
  char buf[32];
  if (unit == 0 || v == static_cast<double>(static_cast<uint64_t>(v))) {
    std::snprintf(buf, sizeof buf, "%llu %s", static_cast<unsigned long long>(v), kUnits[unit]);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[unit]);
  }
  return buf;
}

}  // namespace hcnode
