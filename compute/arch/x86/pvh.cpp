#include "compute/arch/x86/pvh.hpp"

#include <string>

#include "compute/arch/x86/boot_layout.hpp"

namespace hcnode::compute::x86 {

static_assert(kPvhModlistAddr >= kPvhStartInfoAddr + sizeof(HvmStartInfo));
static_assert(kPvhMemmapAddr >= kPvhModlistAddr + sizeof(HvmModlistEntry));

Result<uint64_t> write_pvh_start_info(const GuestMemory& mem, uint64_t cmdline_paddr,
                                      const std::optional<InitrdPlacement>& initrd,
                                      std::span<const E820Entry> memory_map) {
  if (memory_map.size() > kPvhMaxMemmapEntries) {
    return fail(EINVAL, "PVH memory map has " + std::to_string(memory_map.size()) +
                            " entries; the start_info area holds " +
                            std::to_string(kPvhMaxMemmapEntries));
  }
  for (size_t i = 0; i < memory_map.size(); ++i) {
    const E820Entry& e = memory_map[i];
    HCN_TRY_STATUS(mem.write_obj(kPvhMemmapAddr + i * sizeof(HvmMemmapEntry),
                                 HvmMemmapEntry{e.addr, e.size, static_cast<uint32_t>(e.type), 0}));
  }

  HvmStartInfo info{};
  info.magic = kHvmStartMagic;
  info.version = kHvmStartInfoVersion;
  info.cmdline_paddr = cmdline_paddr;
  info.memmap_paddr = kPvhMemmapAddr;
  info.memmap_entries = static_cast<uint32_t>(memory_map.size());
  if (initrd.has_value()) {
    HCN_TRY_STATUS(mem.write_obj(kPvhModlistAddr, HvmModlistEntry{initrd->addr, initrd->size, 0, 0}));
    info.nr_modules = 1;
    info.modlist_paddr = kPvhModlistAddr;
  }
  HCN_TRY_STATUS(mem.write_obj(kPvhStartInfoAddr, info));
  return kPvhStartInfoAddr;
}

}  // namespace hcnode::compute::x86
