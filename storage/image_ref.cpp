#include "storage/image_ref.hpp"

#include <spdlog/fmt/fmt.h>

namespace hcnode::storage {

namespace {

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

}  // namespace

std::string ImageRef::to_string() const {
  std::string out = pool + "/" + name;
  if (snapshot) {
    out += "@" + *snapshot;
  }
  return out;
}

Status validate_name(std::string_view name, std::string_view what) {
  auto bad = [&](std::string_view why) {
    return fail(EINVAL, fmt::format("{} '{}': {}", what, name, why));
  };
  if (name.empty()) {
    return fail(EINVAL, fmt::format("{} is empty", what));
  }
  if (name.size() > kMaxNameLength) {
    return bad(fmt::format("longer than {} characters", kMaxNameLength));
  }
  for (char c : name) {
    if (!is_name_char(c)) {
      return bad("only letters, digits, '.', '_' and '-' are allowed");
    }
  }
  if (name.front() == '.') {
    return bad("must not start with '.'");
  }
  // Temporary RBD images carry these markers (list() hides them, purge removes them).
  for (std::string_view reserved : {".importing-", ".creating-"}) {
    if (name.find(reserved) != std::string_view::npos) {
      return bad(fmt::format("'{}' is reserved for images being created", reserved));
    }
  }
  return {};
}

Status validate_size(uint64_t size) {
  if (size == 0) {
    return fail(EINVAL, "size 0: an image needs at least 512 bytes");
  }
  if (size % 512 != 0) {
    return fail(EINVAL, fmt::format("size {} B is not a multiple of 512 bytes (next valid: {} B)",
                                    size, (size / 512 + 1) * 512));
  }
  return {};
}

Result<ImageRef> parse_image_ref(std::string_view text, bool allow_snapshot) {
  ImageRef ref;
  std::string_view rest = text;
  if (size_t at = rest.find('@'); at != std::string_view::npos) {
    if (!allow_snapshot) {
      return fail(EINVAL, fmt::format("'{}' names a snapshot; expected POOL/NAME", text));
    }
    std::string_view snap = rest.substr(at + 1);
    HCN_TRY_STATUS(validate_name(snap, "snapshot name"));
    ref.snapshot = std::string(snap);
    rest = rest.substr(0, at);
  }
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos) {
    return fail(EINVAL, fmt::format("'{}': expected POOL/NAME{}", text,
                                    allow_snapshot ? "[@SNAPSHOT]" : ""));
  }
  std::string_view pool = rest.substr(0, slash);
  std::string_view name = rest.substr(slash + 1);
  HCN_TRY_STATUS(validate_name(pool, "pool name"));
  HCN_TRY_STATUS(validate_name(name, "image name"));
  ref.pool = std::string(pool);
  ref.name = std::string(name);
  return ref;
}

}  // namespace hcnode::storage
