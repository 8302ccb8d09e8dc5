#include "compute/arch/x86/memory_map.hpp"

#include <algorithm>
#include <string>

#include "compute/arch/x86/boot_layout.hpp"
#include "compute/memory/guest_ram.hpp"

namespace hcnode::compute::x86 {

uint64_t low_ram_end(uint64_t ram_size) { return std::min(ram_size, kMmioHoleStart); }

Result<std::vector<E820Entry>> build_memory_map(uint64_t ram_size) {
  if (ram_size < kMinRamSize || ram_size % 4096 != 0) {
    return fail(EINVAL, "guest RAM of " + std::to_string(ram_size) +
                            " bytes cannot be laid out: at least 2 MiB in whole 4 KiB pages is needed");
  }
  std::vector<E820Entry> map;
  map.push_back({0, kEbdaStart, E820Type::kRam});
  map.push_back({kEbdaStart, kHighMemStart - kEbdaStart, E820Type::kReserved});
  const uint64_t low_end = low_ram_end(ram_size);
  map.push_back({kHighMemStart, low_end - kHighMemStart, E820Type::kRam});
  if (ram_size > low_end) {
    map.push_back({kMmioHoleEnd, ram_size - low_end, E820Type::kRam});
  }
  return map;
}

}  // namespace hcnode::compute::x86
