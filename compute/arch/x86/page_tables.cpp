#include "compute/arch/x86/page_tables.hpp"

#include <array>

#include "compute/arch/x86/boot_layout.hpp"

namespace hcnode::compute::x86 {

static_assert(kPdCount * (1ull << 30) == kIdentityMapEnd);
static_assert(kPdAddr + kPdCount * 4096 <= 0x10000, "boot page tables must stay in the first 64 KiB");

Result<uint64_t> write_identity_page_tables(const GuestMemory& mem) {
  using Table = std::array<uint64_t, 512>;
  constexpr uint64_t kTableFlags = kPtePresent | kPteWritable;

  Table pml4{};
  pml4[0] = kPdptAddr | kTableFlags;
  HCN_TRY_STATUS(mem.write_obj(kPml4Addr, pml4));

  Table pdpt{};
  for (uint64_t i = 0; i < kPdCount; ++i) {
    pdpt[i] = (kPdAddr + i * 4096) | kTableFlags;
  }
  HCN_TRY_STATUS(mem.write_obj(kPdptAddr, pdpt));

  for (uint64_t i = 0; i < kPdCount; ++i) {
    Table pd{};
    for (uint64_t j = 0; j < pd.size(); ++j) {
      const uint64_t phys = (i << 30) | (j << 21);
      pd[j] = phys | kTableFlags | kPteLargePage;
    }
    HCN_TRY_STATUS(mem.write_obj(kPdAddr + i * 4096, pd));
  }
  return kPml4Addr;
}

}  // namespace hcnode::compute::x86
