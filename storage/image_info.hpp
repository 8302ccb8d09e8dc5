// What the storage service reports: plain structs, each convertible to JSON for `-o json`
// (nlohmann's ADL hook: `nlohmann::json j = info;`). Sizes are bytes, times are Unix seconds.
// JSON keys are the field names below in snake_case; optional fields that are unset become
// null; enums become their to_string() text ("raw", "qcow2", "rbd", "gluster", "dir").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "blockdev/open_backend.hpp"  // blockdev::ImageFormat
#include "storage/pool_config.hpp"

namespace hcnode::storage {

using blockdev::ImageFormat;

struct SnapshotInfo {
  std::string name;
  uint64_t id = 0;              // RBD snapshot id
  uint64_t size = 0;            // the image size when it was taken
  int64_t created = 0;          // Unix seconds (0 if unknown)
  std::vector<std::string> children;  // clones of this snapshot, "POOL/NAME"
};

// One layer of a qcow2 backing chain, from the overlay down to the base.
struct BackingLayer {
  std::string backing_file;  // as stored in the qcow2 header (relative name, path or URI)
  std::string uri;           // resolved disk URI ("" if it cannot be resolved)
  std::string format;        // backing format as stored ("raw", "qcow2"; "" if absent)
  std::optional<std::string> image;  // "POOL/NAME" when the layer is an image of a known pool
};

// A row of `hcctl image ls`.
struct ImageSummary {
  std::string pool;
  std::string name;
  uint64_t size = 0;             // virtual size
  ImageFormat format = ImageFormat::kRaw;
  std::optional<std::string> parent;  // RBD: "POOL/NAME@SNAP"; qcow2 overlay: "POOL/NAME"
  bool golden = false;
  // Why the image is not usable: left by an interrupted operation (an import's temporary, a
  // clone killed half-way). list() shows such images only with include_incomplete.
  std::optional<std::string> incomplete;
};

struct ImageInfo {
  std::string pool;
  std::string name;
  PoolKind pool_kind = PoolKind::kRbd;
  std::string uri;               // the disk URI a VMM opens ("rbd:rbd/vm-1", "gluster://…/vm-1.qcow2")
  ImageFormat format = ImageFormat::kRaw;  // what to pass as BackendOptions::format
  uint64_t size = 0;             // virtual size
  uint64_t used = 0;             // bytes allocated by THIS image (not its parent): RBD from
                                 // diff-iterate (whole objects), files from st_blocks * 512
  std::optional<std::string> parent;    // as in ImageSummary
  std::vector<std::string> children;    // images that depend on this one, "POOL/NAME"
  std::vector<SnapshotInfo> snapshots;  // RBD only (empty elsewhere)
  bool golden = false;
  bool read_only = false;        // files: mode has no write bit (golden images are 0444)
  std::vector<std::string> features;    // RBD feature names ("layering", …); empty elsewhere
  std::vector<BackingLayer> backing_chain;  // qcow2 only; empty for raw
  std::optional<std::string> incomplete;    // as in ImageSummary; locate() refuses such images
};

// `du`: provisioned (virtual size) against used (allocated by the image itself).
struct DuEntry {
  std::string name;
  uint64_t provisioned = 0;
  uint64_t used = 0;
};

// Capacity of the storage behind a pool. RBD: the pool's max_avail (replication counted) and
// the cluster's raw total; gluster: glfs_statvfs of the volume; dir: statvfs.
struct PoolSpace {
  uint64_t total = 0;
  uint64_t free = 0;
};

struct DuReport {
  std::string pool;
  std::vector<DuEntry> images;
  uint64_t total_provisioned = 0;
  uint64_t total_used = 0;
  std::optional<PoolSpace> space;  // nullopt when the backend would not say
};

// A row of `hcctl image pools`.
struct PoolSummary {
  std::string name;
  PoolKind kind = PoolKind::kRbd;
  std::string location;            // PoolConfig::describe()
  std::optional<PoolSpace> space;  // nullopt if unreachable (reachable=false then)
  bool reachable = false;
  std::string error;               // why it is unreachable
};

void to_json(nlohmann::json& j, const SnapshotInfo& v);
void to_json(nlohmann::json& j, const BackingLayer& v);
void to_json(nlohmann::json& j, const ImageSummary& v);
void to_json(nlohmann::json& j, const ImageInfo& v);
void to_json(nlohmann::json& j, const DuEntry& v);
void to_json(nlohmann::json& j, const PoolSpace& v);
void to_json(nlohmann::json& j, const DuReport& v);
void to_json(nlohmann::json& j, const PoolSummary& v);

}  // namespace hcnode::storage
