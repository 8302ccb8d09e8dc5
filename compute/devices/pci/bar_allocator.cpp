#include "compute/devices/pci/bar_allocator.hpp"

#include <bit>

namespace hcnode::compute::pci {

Result<uint64_t> BarAllocator::allocate(uint64_t size) {
  if (size == 0 || !std::has_single_bit(size)) {
    return fail(EINVAL, "pci: BAR size must be a power of two");
  }
  const uint64_t mask = size - 1;
  if (next_ > ~uint64_t{0} - mask) {
    return fail(ENOSPC, "pci: MMIO window exhausted");
  }
  const uint64_t base = (next_ + mask) & ~mask;
  if (base >= end_ || size > end_ - base) {
    return fail(ENOSPC, "pci: MMIO window exhausted");
  }
  next_ = base + size;
  return base;
}

}  // namespace hcnode::compute::pci
