// Synthetic kernel images for the x86 boot tests: a small PVH ELF and a small bzImage, built
// byte by byte so each test can break exactly one field.
#pragma once

#include <asm/bootparam.h>
#include <elf.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace hcnode::testing::x86 {

using Bytes = std::vector<uint8_t>;

template <typename T>
void put(Bytes& b, uint64_t off, const T& value) {
  if (b.size() < off + sizeof(T)) {
    b.resize(off + sizeof(T));
  }
  std::memcpy(b.data() + off, &value, sizeof(T));
}

template <typename T>
T get(const Bytes& b, uint64_t off) {
  T value;
  std::memcpy(&value, b.data() + off, sizeof(T));
  return value;
}

// One note: header, name padded to 4, descriptor padded to 4 (gABI).
inline Bytes make_note(const std::string& name_with_nul, uint32_t type, const Bytes& desc) {
  Bytes n;
  put<uint32_t>(n, 0, static_cast<uint32_t>(name_with_nul.size()));
  put<uint32_t>(n, 4, static_cast<uint32_t>(desc.size()));
  put<uint32_t>(n, 8, type);
  n.insert(n.end(), name_with_nul.begin(), name_with_nul.end());
  n.resize((n.size() + 3) & ~size_t{3});
  n.insert(n.end(), desc.begin(), desc.end());
  n.resize((n.size() + 3) & ~size_t{3});
  return n;
}

// The Xen PVH entry note with a 4- or 8-byte descriptor.
inline Bytes make_pvh_note(uint64_t entry, size_t desc_size = 8) {
  Bytes desc(desc_size);
  std::memcpy(desc.data(), &entry, std::min<size_t>(desc_size, 8));
  return make_note(std::string("Xen\0", 4), 18, desc);
}

struct TestSegment {
  uint32_t type = PT_LOAD;
  uint64_t paddr = 0;
  Bytes data;           // p_filesz bytes
  uint64_t memsz = 0;   // 0: same as data.size()
  uint64_t align = 0x1000;
};

// ELF64 header + program headers + each segment's bytes (16-byte aligned offsets).
struct ElfSpec {
  uint8_t elf_class = ELFCLASS64;
  uint16_t type = ET_EXEC;
  uint16_t machine = EM_X86_64;
  uint64_t entry = 0x100000;
  std::vector<TestSegment> segments;

  Bytes build() const {
    Bytes b(sizeof(Elf64_Ehdr) + segments.size() * sizeof(Elf64_Phdr));
    Elf64_Ehdr eh{};
    std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = elf_class;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = type;
    eh.e_machine = machine;
    eh.e_version = EV_CURRENT;
    eh.e_entry = entry;
    eh.e_phoff = sizeof(Elf64_Ehdr);
    eh.e_ehsize = sizeof(Elf64_Ehdr);
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = static_cast<uint16_t>(segments.size());
    put(b, 0, eh);
    for (size_t i = 0; i < segments.size(); ++i) {
      const TestSegment& s = segments[i];
      const uint64_t off = (b.size() + 15) & ~uint64_t{15};
      b.resize(off);
      b.insert(b.end(), s.data.begin(), s.data.end());
      Elf64_Phdr ph{};
      ph.p_type = s.type;
      ph.p_flags = PF_R;
      ph.p_offset = off;
      ph.p_vaddr = s.paddr;
      ph.p_paddr = s.paddr;
      ph.p_filesz = s.data.size();
      ph.p_memsz = s.memsz != 0 ? s.memsz : s.data.size();
      ph.p_align = s.align;
      put(b, sizeof(Elf64_Ehdr) + i * sizeof(Elf64_Phdr), ph);
    }
    return b;
  }
};

inline Bytes pattern(size_t n, uint8_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) {
    b[i] = static_cast<uint8_t>(seed + i * 7);
  }
  return b;
}

// A PVH kernel like the probe guest: text at 1 MiB with the entry at +0x10, data with a .bss
// tail, and a PT_NOTE with the Xen PVH note (8-byte descriptor).
inline constexpr uint64_t kTestPvhEntry = 0x100010;
inline ElfSpec valid_pvh_spec() {
  ElfSpec spec;
  spec.entry = 0x100000;
  spec.segments.push_back(TestSegment{PT_LOAD, 0x100000, pattern(0x300, 1), 0, 0x1000});
  spec.segments.push_back(TestSegment{PT_LOAD, 0x102000, pattern(0x100, 2), 0x2000, 0x1000});
  spec.segments.push_back(TestSegment{PT_NOTE, 0x1002f0, make_pvh_note(kTestPvhEntry), 0, 4});
  return spec;
}

// File offset of program header i's field at field_off (for hostile patches).
inline uint64_t phdr_field(size_t i, size_t field_off) {
  return sizeof(Elf64_Ehdr) + i * sizeof(Elf64_Phdr) + field_off;
}

// A bzImage: 4 setup sectors (+ boot sector), protocol 2.15, relocatable, pref_address 16 MiB,
// init_size 8 MiB, payload `payload_size` bytes of pattern.
inline constexpr uint64_t kTestSetupSects = 4;
inline constexpr uint64_t kTestPayloadOffset = (kTestSetupSects + 1) * 512;
inline Bytes valid_bzimage(size_t payload_size = 0x1000) {
  Bytes b(kTestPayloadOffset, 0);
  setup_header h{};
  h.setup_sects = kTestSetupSects;
  h.syssize = static_cast<uint32_t>(payload_size / 16);
  h.boot_flag = 0xaa55;
  h.jump = 0x6aeb;  // "jmp short +0x6a": the header ends at 0x202 + 0x6a = 0x26c
  h.header = 0x53726448;
  h.version = 0x020f;
  h.loadflags = LOADED_HIGH;
  h.code32_start = 0x100000;
  h.initrd_addr_max = 0x7fffffff;
  h.kernel_alignment = 0x200000;
  h.relocatable_kernel = 1;
  h.min_alignment = 21;
  h.xloadflags = XLF_KERNEL_64;
  h.cmdline_size = 2047;
  h.pref_address = 0x1000000;
  h.init_size = 0x800000;
  put(b, 0x1f1, h);
  const Bytes payload = pattern(payload_size, 3);
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

// File offset of a setup_header field: HCN_HDR_OFF(version) == 0x206.
#define HCN_HDR_OFF(field) (0x1f1 + offsetof(setup_header, field))

}  // namespace hcnode::testing::x86
