// Disk URIs: how a disk is named everywhere (CLI, control API, VMM flags, cluster state).
//
//   rbd:POOL/IMAGE[@SNAP]          rbd:POOL/NAMESPACE/IMAGE[@SNAP]
//   gluster://HOST[:PORT]/VOLUME/PATH   (HOST: a name or IPv4 address)
//   file:/ABSOLUTE/PATH
//
// Parsing is pure and strict: names are checked here once, so that no layer below has to
// wonder whether an image name could contain '/' or a path could climb out with "..".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "base/result.hpp"

namespace hcnode::blockdev {

struct RbdLocation {
  std::string pool;
  std::string ns;  // RADOS namespace; empty = default
  std::string image;
  std::optional<std::string> snapshot;
  bool operator==(const RbdLocation&) const = default;
};

struct GlusterLocation {
  std::string host;
  uint16_t port = 24007;  // glusterd's management port
  std::string volume;
  std::string path;  // inside the volume, always starts with '/'
  bool operator==(const GlusterLocation&) const = default;
};

struct FileLocation {
  std::string path;  // absolute
  bool operator==(const FileLocation&) const = default;
};

struct DiskUri {
  std::variant<RbdLocation, GlusterLocation, FileLocation> location;

  // The canonical spelling; parse_disk_uri(to_string()) == *this.
  std::string to_string() const;
  bool operator==(const DiskUri&) const = default;
};

// Parses one URI; the error message names the offending part.
Result<DiskUri> parse_disk_uri(std::string_view text);

// RBD pool, namespace, image and snapshot names accepted by hcnode: 1..96 bytes of
// [A-Za-z0-9._-], not starting with '.' (Ceph itself is more lenient; these stay safe in URIs,
// shell commands and object names).
bool is_valid_rbd_name(std::string_view name);

}  // namespace hcnode::blockdev
