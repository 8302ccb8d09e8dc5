// ELF kernel loader for the PVH boot path: an ELF64 x86-64 executable (the probe guest, a Linux
// vmlinux built with CONFIG_PVH) whose PT_LOAD segments go to their physical addresses and
// whose Xen note gives the 32-bit PVH entry point.
//
// The file is untrusted input (an operator's kernel path, a tenant's image): every header,
// offset, size and note is checked before it is used, against the file's length and with
// overflow-safe arithmetic, so that a truncated or hostile file gives a precise error and never
// an out-of-bounds read (tests/fuzz/elf_loader_fuzz.cpp). Specs: System V gABI ("ELF Header",
// "Program Header", "Note Section"), xen/include/public/elfnote.h (XEN_ELFNOTE_PHYS32_ENTRY).
//
// Errors: ENOEXEC when the file is not a kernel this loader accepts (the message says which
// check failed), ENOMEM when a segment lies beyond the guest's RAM (a bigger VM would fit it).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "base/result.hpp"
#include "compute/arch/x86/boot_layout.hpp"
#include "compute/memory/guest_memory.hpp"
#include "compute/memory/guest_ram.hpp"

namespace hcnode::compute::x86 {

// xen/include/public/elfnote.h: the note (owner "Xen") whose descriptor is the physical address
// of the 32-bit PVH entry point.
inline constexpr uint32_t kXenElfNotePhys32Entry = 18;

// Sanity bounds on hostile files: more program headers than any kernel has, a total image
// larger than a 32-bit PVH entry can address below the MMIO hole.
inline constexpr uint32_t kMaxElfProgramHeaders = 64;
inline constexpr uint64_t kMaxElfImageSize = 2ull << 30;

// One PT_LOAD segment with a non-zero memory size.
struct ElfSegment {
  uint32_t index;      // program header index, for messages ("segment 2")
  uint64_t paddr;      // p_paddr: where it is loaded
  uint64_t offset;     // p_offset in the file
  uint64_t file_size;  // p_filesz: bytes copied from the file
  uint64_t mem_size;   // p_memsz: bytes occupied; [file_size, mem_size) is zero-filled
};

struct ElfKernel {
  uint64_t entry = 0;                  // e_entry (not used by PVH boot; informational)
  std::optional<uint32_t> pvh_entry;   // XEN_ELFNOTE_PHYS32_ENTRY, absent without the note
  std::vector<ElfSegment> segments;    // PT_LOAD segments in program header order
  uint64_t lowest_addr = 0;            // lowest loaded guest-physical address
  uint64_t end_addr = 0;               // one past the highest loaded byte
};

// Where a segment may land. Defaults: at or above 1 MiB (below are the VMM's boot tables) and
// below the 3 GiB MMIO hole (PVH enters in 32-bit mode with paging off, so a kernel must sit
// in the RAM below 4 GiB, which ends where the hole starts).
struct ElfLoadLimits {
  uint64_t min_paddr = kKernelMinAddr;
  uint64_t max_end = kMmioHoleStart;
};

// Validates the file without touching guest memory: ELF header (magic, ELFCLASS64, little
// endian, ET_EXEC, EM_X86_64), program header table (entry size, count <= 64, inside the
// file), each PT_LOAD (file range inside the file, p_filesz <= p_memsz, no address overflow,
// no overlap with another PT_LOAD, total size bounded) and each PT_NOTE (notes walked with
// bounds checks; the Xen PVH note's descriptor is 4 or 8 bytes, little-endian, < 4 GiB, and
// must point into a loaded segment). Only program headers are read; section headers are ignored.
Result<ElfKernel> inspect_elf_kernel(std::span<const uint8_t> file);

// inspect_elf_kernel, then checks every segment against limits and guest RAM, then copies each
// segment to p_paddr and zero-fills p_memsz beyond p_filesz (the probe guest relies on a zeroed
// .bss). Nothing is written unless every segment fits.
Result<ElfKernel> load_elf_kernel(const GuestMemory& mem, std::span<const uint8_t> file,
                                  const ElfLoadLimits& limits = {});

}  // namespace hcnode::compute::x86
