#include "compute/arch/x86/initrd.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "compute/arch/x86/hex.hpp"
#include "compute/arch/x86/memory_map.hpp"

namespace hcnode::compute::x86 {

Result<InitrdPlacement> place_initrd(uint64_t ram_size, uint64_t size, uint64_t floor, uint64_t limit) {
  constexpr uint64_t kPage = 4096;
  const uint64_t top = std::min(low_ram_end(ram_size), limit);
  if (size == 0) {
    return fail(EINVAL, "initrd is empty");
  }
  if (size > top || ((top - size) & ~(kPage - 1)) < floor) {
    return fail(ENOMEM, "initrd (" + human_size(size) + ") does not fit between the kernel (ends at " +
                            hex(floor) + ") and " + hex(top) + " with " + human_size(ram_size) +
                            " of RAM: give the VM more memory or use a smaller initrd");
  }
  return InitrdPlacement{(top - size) & ~(kPage - 1), size};
}

Result<InitrdPlacement> load_initrd(const GuestMemory& mem, std::span<const uint8_t> initrd,
                                    uint64_t floor, uint64_t limit) {
  const InitrdPlacement where = HCN_TRY(place_initrd(mem.ram_size(), initrd.size(), floor, limit));
  HCN_TRY_STATUS(mem.write(where.addr, initrd));
  return where;
}

}  // namespace hcnode::compute::x86
