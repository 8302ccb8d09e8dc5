// Records of RBD clones in progress, so that a clone interrupted by a killed process is never
// taken for a valid image (image_service.hpp, "Atomicity").
//
// rbd_clone3 creates the child under its final name, then links it to its parent and copies
// the parent's metadata, in several RADOS steps. librbd removes the child when a step fails,
// but a process killed in between leaves a child that looks like an ordinary image (at first
// an empty one without a parent). So hcnode brackets every clone with a record in the omap of
// one RADOS object per pool namespace, `hcnode.clones`:
//   begin(NAME)  key "NAME/TOKEN" -> {"parent", "host", "pid", "started"}, written BEFORE
//                rbd_clone3 starts;
//   forget(NAME) after rbd_clone3 succeeded: removes every key of NAME in one omap range
//                removal. The clone is complete from then on. (A successful rbd_clone3 means
//                NAME did not exist before it, so any older record of NAME is stale: that
//                attempt's image was removed since.) remove() of an image also forgets it;
//   abort(KEY)   after rbd_clone3 failed (librbd removed its child): removes the own key.
// An image with a record is incomplete: list() hides it, info() says so, locate() refuses it,
// purge_incomplete() removes image and records once they are older than its min_age (a younger
// one may be a clone still running in another process). Cost: two small RADOS writes per clone.
//
// Thread-safety: stateless over a thread-safe rados_ioctx_t; callable from any thread.
#pragma once

#include <rados/librados.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.hpp"

namespace hcnode::storage {

inline constexpr const char* kCloneIntentsObject = "hcnode.clones";

struct CloneIntent {
  std::string key;     // "NAME/TOKEN"
  std::string name;    // the clone's image name
  std::string parent;  // "POOL/IMAGE@SNAP", as the cloning process named it
  std::string host;    // where the cloning process ran
  int64_t pid = 0;
  int64_t started = 0;  // unix seconds

  // One line for an operator: "interrupted clone of rbd/golden@golden (pid 42 on node1, at …)".
  std::string describe() const;
};

class CloneIntents {
 public:
  explicit CloneIntents(rados_ioctx_t io) : io_(io) {}

  // Records that `name` is about to be cloned from `parent`; returns the record's key.
  Result<std::string> begin(const std::string& name, const std::string& parent);
  // Drops every record of `name` (its clone completed, or the image was removed).
  Status forget(const std::string& name);
  // Drops one record (its clone failed and left nothing).
  Status abort(const std::string& key);
  // The records of one image (name) or of the whole pool (nullopt), oldest key order.
  Result<std::vector<CloneIntent>> list(const std::string* name = nullptr);

 private:
  rados_ioctx_t io_;
};

}  // namespace hcnode::storage
