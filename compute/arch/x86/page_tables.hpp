// Identity-mapped page tables for the Linux 64-bit boot protocol, which starts the kernel in
// long mode with paging on and requires an identity mapping of at least the kernel (up to
// init_size), the zero page and the command line (boot.rst, "64-bit BOOT PROTOCOL").
//
// We map all of [0, 4 GiB) with 2 MiB pages: one PML4 entry -> one PDPT -> 4 page directories
// of 512 entries each, at kPml4Addr/kPdptAddr/kPdAddr. That covers every boot structure, the
// kernel, the initrd (always below 3 GiB) and the MMIO hole. The kernel builds its own tables
// early and never returns to these.
#pragma once

#include <cstdint>

#include "base/result.hpp"
#include "compute/memory/guest_memory.hpp"

namespace hcnode::compute::x86 {

inline constexpr uint64_t kIdentityMapEnd = 1ull << 32;

// Page-table entry bits (SDM Vol. 3 §4.5, Tables 4-15 .. 4-18).
inline constexpr uint64_t kPtePresent = 1ull << 0;
inline constexpr uint64_t kPteWritable = 1ull << 1;
inline constexpr uint64_t kPteLargePage = 1ull << 7;  // PS: a PDE maps a 2 MiB page

// Writes the tables and returns the value for CR3 (the PML4 address).
Result<uint64_t> write_identity_page_tables(const GuestMemory& mem);

}  // namespace hcnode::compute::x86
