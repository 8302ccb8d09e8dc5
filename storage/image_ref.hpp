// How people name images: POOL/NAME, and POOL/NAME@SNAP where a snapshot is meant.
// Plus the validation rules every operation applies to names and sizes before touching a pool.
//
// Pure code: unit-tested in tests/unit/storage/image_ref_test.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.hpp"

namespace hcnode::storage {

struct ImageRef {
  std::string pool;
  std::string name;
  std::optional<std::string> snapshot;

  // "POOL/NAME" or "POOL/NAME@SNAP".
  std::string to_string() const;
  bool operator==(const ImageRef&) const = default;
};

// Parses "POOL/NAME" or "POOL/NAME@SNAP". EINVAL naming the bad part; names must pass
// validate_name. Snapshots are only accepted where allow_snapshot is true (EINVAL otherwise:
// "… names a snapshot; expected POOL/NAME").
Result<ImageRef> parse_image_ref(std::string_view text, bool allow_snapshot = false);

inline constexpr size_t kMaxNameLength = 96;

// Image, snapshot and pool names: 1..96 characters of [A-Za-z0-9._-], not starting with '.'
// (dot-names are the service's own temporaries on file pools), not "." or "..", and without
// the markers of temporary RBD images (".importing-", ".creating-").
// `what` ("image name", "snapshot name", "pool name") starts the EINVAL message:
//   image name 'a/b': only letters, digits, '.', '_' and '-' are allowed
Status validate_name(std::string_view name, std::string_view what = "image name");

// Sizes of new images and resizes: > 0 and a multiple of 512 (the guest's sector size).
// EINVAL: "size 1000 B is not a multiple of 512 bytes (next valid: 1024 B)".
Status validate_size(uint64_t size);

}  // namespace hcnode::storage
