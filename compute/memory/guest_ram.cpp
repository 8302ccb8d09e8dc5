#include "compute/memory/guest_ram.hpp"

#include <algorithm>

namespace hcnode::compute {

Result<GuestRam> GuestRam::create(uint64_t size) {
  if (size == 0 || size % 4096 != 0) {
    return fail(EINVAL, "guest memory size " + std::to_string(size) + " is not a non-zero multiple of 4 KiB");
  }
  std::vector<RamRegion> regions;
  const uint64_t low = std::min(size, kMmioHoleStart);
  regions.push_back(RamRegion{0, HCN_TRY(MmapRegion::anonymous(low))});
  if (size > low) {
    regions.push_back(RamRegion{kMmioHoleEnd, HCN_TRY(MmapRegion::anonymous(size - low))});
  }
  return GuestRam(std::move(regions), size);
}

Result<std::span<uint8_t>> GuestRam::slice(uint64_t gpa, uint64_t len) const {
  for (const auto& r : regions_) {
    if (range_inside(gpa, len, r.gpa, r.host.size())) {
      return std::span<uint8_t>(r.host.data() + (gpa - r.gpa), len);
    }
  }
  return fail(EFAULT, "guest range [" + std::to_string(gpa) + ", +" + std::to_string(len) +
                          ") is not inside guest RAM");
}

}  // namespace hcnode::compute
