#include "compute/arch/x86/elf_loader.hpp"

#include <elf.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "compute/arch/x86/hex.hpp"

namespace hcnode::compute::x86 {
namespace {

std::unexpected<Error> bad_elf(const std::string& what) {
  return fail(ENOEXEC, "kernel ELF: " + what);
}

// [off, off + len) lies inside a buffer of n bytes (no overflow for any 64-bit inputs).
bool inside(uint64_t off, uint64_t len, uint64_t n) { return off <= n && len <= n - off; }

// Copies a header out of the file; the caller has checked [off, off + sizeof(T)) is inside.
template <typename T>
T read_header(std::span<const uint8_t> file, uint64_t off) {
  static_assert(std::is_trivially_copyable_v<T>);
  T value;
  // SAFETY: host bytes of the kernel file, bounds checked by the caller; memcpy because the
  // file offset need not be aligned for T.
  std::memcpy(&value, file.data() + off, sizeof(T));
  return value;
}

uint64_t align_up(uint64_t value, uint64_t align) { return (value + align - 1) & ~(align - 1); }

std::string segment_name(uint32_t index) { return "segment " + std::to_string(index); }

// Walks the notes of one PT_NOTE segment (gABI "Note Section": namesz, descsz, type, then the
// name and the descriptor; the descriptor and the next note start at offsets from the note's
// start rounded up to the alignment, as binutils' ELF_NOTE_DESC_OFFSET/ELF_NOTE_NEXT_OFFSET
// compute them) and records the PVH entry if the Xen PHYS32_ENTRY note is there. Every size
// comes from the file and is checked before use; sizes are 32-bit, so the sums below cannot
// overflow 64 bits.
Status scan_notes(std::span<const uint8_t> notes, uint64_t align, uint32_t index,
                  std::optional<uint32_t>& pvh_entry) {
  uint64_t pos = 0;
  while (pos < notes.size()) {
    if (notes.size() - pos < sizeof(Elf64_Nhdr)) {
      return bad_elf(segment_name(index) + ": note header at offset " + std::to_string(pos) +
                     " is truncated (" + std::to_string(notes.size() - pos) + " bytes left)");
    }
    const auto nhdr = read_header<Elf64_Nhdr>(notes, pos);
    const uint64_t name_off = pos + sizeof(Elf64_Nhdr);
    const uint64_t desc_off = pos + align_up(sizeof(Elf64_Nhdr) + nhdr.n_namesz, align);
    if (desc_off > notes.size() || nhdr.n_descsz > notes.size() - desc_off) {
      return bad_elf(segment_name(index) + ": note at offset " + std::to_string(pos) + " (namesz " +
                     std::to_string(nhdr.n_namesz) + ", descsz " + std::to_string(nhdr.n_descsz) +
                     ") extends past the end of its segment (" + std::to_string(notes.size()) +
                     " bytes)");
    }
    // The owner is "Xen" with its NUL: namesz counts the terminator (gABI).
    const bool is_xen = nhdr.n_namesz == 4 && std::memcmp(notes.data() + name_off, "Xen", 4) == 0;
    if (is_xen && nhdr.n_type == kXenElfNotePhys32Entry) {
      if (pvh_entry.has_value()) {
        return bad_elf("more than one Xen PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)");
      }
      // Linux emits the address with _ASM_PTR (8 bytes on x86-64), older kernels and some
      // guests with .long; QEMU reads 8. Accept both, little-endian.
      uint64_t value = 0;
      if (nhdr.n_descsz == 4) {
        value = read_header<uint32_t>(notes, desc_off);
      } else if (nhdr.n_descsz == 8) {
        value = read_header<uint64_t>(notes, desc_off);
      } else {
        return bad_elf("the Xen PVH entry note has a " + std::to_string(nhdr.n_descsz) +
                       "-byte descriptor (expected 4 or 8)");
      }
      if (value > UINT32_MAX) {
        return bad_elf("the Xen PVH entry point " + hex(value) +
                       " is above 4 GiB; PVH enters in 32-bit mode");
      }
      pvh_entry = static_cast<uint32_t>(value);
    }
    // The last note's padding may be missing at the end of the segment: stop there.
    pos = std::min<uint64_t>(pos + align_up(desc_off - pos + nhdr.n_descsz, align), notes.size());
  }
  return {};
}

}  // namespace

Result<ElfKernel> inspect_elf_kernel(std::span<const uint8_t> file) {
  const uint64_t size = file.size();
  if (size < sizeof(Elf64_Ehdr)) {
    return bad_elf("the file is " + std::to_string(size) + " bytes, shorter than an ELF64 header");
  }
  const auto eh = read_header<Elf64_Ehdr>(file, 0);
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) {
    return bad_elf("no ELF magic (\\x7fELF) at the start of the file");
  }
  if (eh.e_ident[EI_CLASS] != ELFCLASS64) {
    return bad_elf("class " + std::to_string(eh.e_ident[EI_CLASS]) +
                   " is not ELFCLASS64 (a 32-bit kernel?)");
  }
  if (eh.e_ident[EI_DATA] != ELFDATA2LSB) {
    return bad_elf("data encoding " + std::to_string(eh.e_ident[EI_DATA]) + " is not little-endian");
  }
  if (eh.e_ident[EI_VERSION] != EV_CURRENT || eh.e_version != EV_CURRENT) {
    return bad_elf("ELF version " + std::to_string(eh.e_version) + " is not EV_CURRENT");
  }
  if (eh.e_type != ET_EXEC) {
    return bad_elf("type " + std::to_string(eh.e_type) + " is not an executable (ET_EXEC)");
  }
  if (eh.e_machine != EM_X86_64) {
    return bad_elf("machine " + std::to_string(eh.e_machine) + " is not x86-64 (EM_X86_64 = 62)");
  }
  if (eh.e_phentsize != sizeof(Elf64_Phdr)) {
    return bad_elf("program header entry size " + std::to_string(eh.e_phentsize) + " is not " +
                   std::to_string(sizeof(Elf64_Phdr)));
  }
  if (eh.e_phnum == 0) {
    return bad_elf("no program headers");
  }
  if (eh.e_phnum > kMaxElfProgramHeaders) {
    return bad_elf(std::to_string(eh.e_phnum) + " program headers (at most " +
                   std::to_string(kMaxElfProgramHeaders) + " accepted)");
  }
  const uint64_t ph_bytes = uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr);
  if (!inside(eh.e_phoff, ph_bytes, size)) {
    return bad_elf("program headers (offset " + std::to_string(eh.e_phoff) + ", " +
                   std::to_string(ph_bytes) + " bytes) extend past the end of the file (" +
                   std::to_string(size) + " bytes)");
  }

  ElfKernel kernel;
  kernel.entry = eh.e_entry;
  uint64_t total = 0;
  for (uint32_t i = 0; i < eh.e_phnum; ++i) {
    const auto ph = read_header<Elf64_Phdr>(file, eh.e_phoff + uint64_t{i} * sizeof(Elf64_Phdr));
    if (ph.p_type == PT_LOAD) {
      if (ph.p_memsz == 0) {
        continue;  // occupies nothing (gABI allows it); nothing to load or check
      }
      if (ph.p_filesz > ph.p_memsz) {
        return bad_elf(segment_name(i) + ": p_filesz " + hex(ph.p_filesz) + " exceeds p_memsz " +
                       hex(ph.p_memsz));
      }
      if (!inside(ph.p_offset, ph.p_filesz, size)) {
        return bad_elf(segment_name(i) + ": file range (offset " + hex(ph.p_offset) + ", size " +
                       hex(ph.p_filesz) + ") extends past the end of the file (" +
                       std::to_string(size) + " bytes)");
      }
      if (ph.p_paddr > UINT64_MAX - ph.p_memsz) {
        return bad_elf(segment_name(i) + ": paddr " + hex(ph.p_paddr) + " + memsz " +
                       hex(ph.p_memsz) + " overflows");
      }
      total += ph.p_memsz;  // each term < 2^64 - paddr; checked against the bound right away
      if (ph.p_memsz > kMaxElfImageSize || total > kMaxElfImageSize) {
        return bad_elf("segments take more than " + human_size(kMaxElfImageSize) +
                       " of memory (" + segment_name(i) + " memsz " + hex(ph.p_memsz) + ")");
      }
      kernel.segments.push_back(ElfSegment{i, ph.p_paddr, ph.p_offset, ph.p_filesz, ph.p_memsz});
    } else if (ph.p_type == PT_NOTE) {
      if (!inside(ph.p_offset, ph.p_filesz, size)) {
        return bad_elf(segment_name(i) + " (PT_NOTE): file range (offset " + hex(ph.p_offset) +
                       ", size " + hex(ph.p_filesz) + ") extends past the end of the file (" +
                       std::to_string(size) + " bytes)");
      }
      // Notes are 4-byte aligned on x86-64 in practice (Linux, GNU ld); a segment that declares
      // 8-byte alignment (GNU property notes) pads to 8.
      const uint64_t align = ph.p_align == 8 ? 8 : 4;
      HCN_TRY_STATUS(scan_notes(file.subspan(ph.p_offset, ph.p_filesz), align, i, kernel.pvh_entry));
    }
  }
  if (kernel.segments.empty()) {
    return bad_elf("no loadable (PT_LOAD) segment");
  }

  std::vector<ElfSegment> sorted = kernel.segments;
  std::sort(sorted.begin(), sorted.end(),
            [](const ElfSegment& a, const ElfSegment& b) { return a.paddr < b.paddr; });
  for (size_t j = 1; j < sorted.size(); ++j) {
    const ElfSegment& prev = sorted[j - 1];
    const ElfSegment& next = sorted[j];
    if (next.paddr < prev.paddr + prev.mem_size) {
      return bad_elf(segment_name(prev.index) + " [" + hex(prev.paddr) + ", " +
                     hex(prev.paddr + prev.mem_size) + ") and " + segment_name(next.index) + " [" +
                     hex(next.paddr) + ", " + hex(next.paddr + next.mem_size) + ") overlap");
    }
  }
  kernel.lowest_addr = sorted.front().paddr;
  kernel.end_addr = sorted.back().paddr + sorted.back().mem_size;

  if (kernel.pvh_entry.has_value()) {
    const uint64_t e = *kernel.pvh_entry;
    const bool in_code = std::any_of(sorted.begin(), sorted.end(), [e](const ElfSegment& s) {
      return e >= s.paddr && e - s.paddr < s.file_size;
    });
    if (!in_code) {
      return bad_elf("the PVH entry point " + hex(e) +
                     " is not inside the file-backed part of any loaded segment");
    }
  }
  return kernel;
}

Result<ElfKernel> load_elf_kernel(const GuestMemory& mem, std::span<const uint8_t> file,
                                  const ElfLoadLimits& limits) {
  ElfKernel kernel = HCN_TRY(inspect_elf_kernel(file));

  // Check every segment before writing any, so a refused kernel leaves guest RAM untouched.
  for (const ElfSegment& s : kernel.segments) {
    const std::string where = segment_name(s.index) + " (paddr " + hex(s.paddr) + ", memsz " +
                              hex(s.mem_size) + ")";
    if (s.paddr < limits.min_paddr) {
      return bad_elf(where + " starts below " + hex(limits.min_paddr) +
                     ", where the VMM keeps its boot tables");
    }
    if (s.paddr + s.mem_size > limits.max_end) {
      return bad_elf(where + " ends above " + hex(limits.max_end) +
                     ", the highest address a PVH kernel may occupy (32-bit entry, MMIO hole above)");
    }
    if (!mem.slice(s.paddr, s.mem_size)) {
      return fail(ENOMEM, "kernel ELF: " + where + " lies outside guest RAM (" +
                              human_size(mem.ram_size()) + "): give the VM more memory");
    }
  }
  for (const ElfSegment& s : kernel.segments) {
    // SAFETY: host view of guest RAM [paddr, paddr + memsz), bounds checked by slice(); the
    // guest is not running yet, so nothing else writes it concurrently.
    std::span<uint8_t> dst = HCN_TRY(mem.slice(s.paddr, s.mem_size));
    std::memcpy(dst.data(), file.data() + s.offset, s.file_size);
    std::memset(dst.data() + s.file_size, 0, s.mem_size - s.file_size);
  }
  return kernel;
}

}  // namespace hcnode::compute::x86
