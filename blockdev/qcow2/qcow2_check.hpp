// Consistency check of a qcow2 image (the refcount / reference walk `qemu-img check` does):
// every cluster the metadata references must be counted, counted once per reference, lie
// inside the file, and carry the COPIED flag exactly when its refcount is 1.
//   errors: a referenced cluster whose refcount is lower than its references (or 0), a
//           reference past the end of the file or into the header, a wrong COPIED flag —
//           anything that can lose or corrupt data.
//   leaks:  clusters with a refcount but no reference (space wasted, data safe; what an
//           interrupted allocation leaves, qcow2_backend.hpp).
// Images with internal snapshots are refused (EOPNOTSUPP): their references are not walked
// here. Compressed clusters count one reference on each host cluster their byte range touches.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "blockdev/sync_disk.hpp"

namespace hcnode::blockdev::qcow2 {

struct CheckReport {
  uint64_t errors = 0;
  uint64_t leaks = 0;
  uint64_t referenced_clusters = 0;  // distinct clusters the metadata references
  uint64_t data_clusters = 0;        // of which hold guest data (L2 entries with an offset)
  std::vector<std::string> problems;  // the first few, for messages
  bool clean() const { return errors == 0 && leaks == 0; }
};

// `file` is the image's bytes (opened raw).
Result<CheckReport> check_image(SyncDisk& file);

}  // namespace hcnode::blockdev::qcow2
