// RAII owner of librbd's rbd_image_options_t (rbd_image_options_create ... _destroy), and the
// option set every image the storage service creates gets.
#pragma once

#include <rbd/features.h>
#include <rbd/librbd.h>

#include <cstdint>
#include <utility>

#include "base/result.hpp"

namespace hcnode::storage {

// layering (clones), exclusive-lock (one writer, fencing), object-map + fast-diff (fast du,
// flatten and diff), deep-flatten (flatten also detaches snapshots). Not journaling.
inline constexpr uint64_t kRbdFeatures = RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK |
                                         RBD_FEATURE_OBJECT_MAP | RBD_FEATURE_FAST_DIFF |
                                         RBD_FEATURE_DEEP_FLATTEN;

class RbdImageOptions {
 public:
  RbdImageOptions() { rbd_image_options_create(&opts_); }
  RbdImageOptions(RbdImageOptions&& o) noexcept : opts_(std::exchange(o.opts_, nullptr)) {}
  RbdImageOptions& operator=(RbdImageOptions&&) = delete;
  RbdImageOptions(const RbdImageOptions&) = delete;
  RbdImageOptions& operator=(const RbdImageOptions&) = delete;
  ~RbdImageOptions() {
    if (opts_ != nullptr) {
      rbd_image_options_destroy(opts_);
    }
  }

  rbd_image_options_t get() const { return opts_; }

  // rbd_image_options_set_uint64 (RBD_IMAGE_OPTION_*).
  Status set(int option, uint64_t value) {
    if (int r = rbd_image_options_set_uint64(opts_, option, value); r < 0) {
      return fail(from_negative_errno(r, "rbd_image_options_set_uint64"));
    }
    return {};
  }

  // Image format 2 with kRbdFeatures; for clones also clone format 2 (clone v2: no snapshot
  // protection, the parent snapshot can be trashed while children exist).
  static Result<RbdImageOptions> standard(bool clone) {
    RbdImageOptions o;
    HCN_TRY_STATUS(o.set(RBD_IMAGE_OPTION_FORMAT, 2));
    HCN_TRY_STATUS(o.set(RBD_IMAGE_OPTION_FEATURES, kRbdFeatures));
    if (clone) {
      HCN_TRY_STATUS(o.set(RBD_IMAGE_OPTION_CLONE_FORMAT, 2));
    }
    return o;
  }

 private:
  rbd_image_options_t opts_ = nullptr;
};

}  // namespace hcnode::storage
