// Sizes as people write them: "128M", "1G", "512KiB", "4096". Binary multiples (K = 1024).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.hpp"

namespace hcnode {

// Parses a non-negative size; suffixes K, M, G, T with optional "iB" or "B", case-insensitive.
// Overflow and junk are errors (EINVAL) naming the text.
Result<uint64_t> parse_size(std::string_view text);

// "128 MiB", "1.5 GiB", "4096 B" — for messages.
std::string format_size(uint64_t bytes);

}  // namespace hcnode
