// DiskConfig: one virtio-blk disk of a VM, as given on the command line or in the JSON config.
//
//   --disk uri=rbd:rbd/vm1-root,serial=vm1-root,queues=2,cache=writeback
//   --disk uri=file:/var/lib/hcnode/scratch.img,readonly=on
//   "disks": [{"uri": "gluster://127.0.0.2/vmstore/vm1.img", "readonly": false, ...}]
//
// Keys (the same in both forms): uri (required; rbd:, gluster://, file: — blockdev/disk_uri.hpp),
// format (raw or qcow2: a qcow2 disk has one queue, blockdev/qcow2), readonly (on/off/true/false), serial (GET_ID,
// up to 20 printable ASCII characters, default the disk's name), queues (1..64, default: one per
// vCPU), queue_size (power of two 16..1024, default 256), cache (writeback | none, see
// blockdev/open_backend.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "base/result.hpp"

namespace hcnode::compute {

struct DiskConfig {
  std::string uri;
  std::string format = "raw";
  bool read_only = false;
  std::string serial;       // empty: "blkN"
  uint16_t queues = 0;      // 0: one per vCPU
  uint16_t queue_size = 256;
  std::string cache = "writeback";

  nlohmann::json to_json() const;
};

// "uri=...,readonly=on,..." (comma-separated key=value; a URI may not contain ',').
Result<DiskConfig> parse_disk_spec(std::string_view text);
Result<DiskConfig> disk_from_json(const nlohmann::json& json);
// Checks every field (the URI's syntax included); the message names the field.
Status validate_disk(const DiskConfig& disk);

}  // namespace hcnode::compute
