#include <catch2/catch.hpp>

#include <algorithm>

#include "compute/arch/x86/elf_loader.hpp"
#include "tests/fakes/fake_guest_memory.hpp"
#include "tests/unit/compute/arch_x86/test_images.hpp"

using namespace hcnode;
using namespace hcnode::compute::x86;
using namespace hcnode::testing::x86;
using hcnode::testing::FakeGuestMemory;

namespace {

constexpr uint64_t kRam = 16ull << 20;

bool mentions(const Error& e, const std::string& text) {
  return e.context().find(text) != std::string::npos;
}

Error inspect_error(const Bytes& file) {
  auto r = inspect_elf_kernel(file);
  REQUIRE_FALSE(r.has_value());
  return r.error();
}

}  // namespace

TEST_CASE("x86 ELF loader loads PT_LOAD segments and zero-fills .bss", "[x86][elf]") {
  FakeGuestMemory mem(kRam);
  // Garbage where .bss goes: the loader must zero it, not rely on fresh memory.
  std::fill_n(mem.host(0x102000), 0x2000, uint8_t{0xaa});
  const ElfSpec spec = valid_pvh_spec();
  const Bytes file = spec.build();

  auto k = load_elf_kernel(mem, file);
  REQUIRE(k.has_value());
  CHECK(k->entry == 0x100000);
  REQUIRE(k->pvh_entry.has_value());
  CHECK(*k->pvh_entry == kTestPvhEntry);
  REQUIRE(k->segments.size() == 2);
  CHECK(k->segments[0].index == 0);
  CHECK(k->segments[1].index == 1);
  CHECK(k->lowest_addr == 0x100000);
  CHECK(k->end_addr == 0x104000);

  CHECK(std::equal(spec.segments[0].data.begin(), spec.segments[0].data.end(), mem.host(0x100000)));
  CHECK(std::equal(spec.segments[1].data.begin(), spec.segments[1].data.end(), mem.host(0x102000)));
  CHECK(std::all_of(mem.host(0x102100), mem.host(0x104000), [](uint8_t b) { return b == 0; }));
}

TEST_CASE("x86 ELF loader accepts a 4-byte PVH note descriptor and skips other notes", "[x86][elf]") {
  ElfSpec spec = valid_pvh_spec();
  Bytes notes = make_note(std::string("GNU\0", 4), 3, pattern(20, 9));      // NT_GNU_BUILD_ID
  const Bytes other_xen = make_note(std::string("Xen\0", 4), 6, Bytes{'l', 'i', 'n', 'u', 'x', 0});
  const Bytes pvh = make_pvh_note(kTestPvhEntry, 4);
  notes.insert(notes.end(), other_xen.begin(), other_xen.end());
  notes.insert(notes.end(), pvh.begin(), pvh.end());
  spec.segments[2].data = notes;
  auto k = inspect_elf_kernel(spec.build());
  REQUIRE(k.has_value());
  REQUIRE(k->pvh_entry.has_value());
  CHECK(*k->pvh_entry == kTestPvhEntry);
}

TEST_CASE("x86 ELF loader without a PVH note reports no entry", "[x86][elf]") {
  ElfSpec spec = valid_pvh_spec();
  spec.segments.pop_back();
  auto k = inspect_elf_kernel(spec.build());
  REQUIRE(k.has_value());
  CHECK_FALSE(k->pvh_entry.has_value());
}

TEST_CASE("x86 ELF loader refuses every truncated prefix of a valid file", "[x86][elf][hostile]") {
  FakeGuestMemory mem(kRam);
  const Bytes file = valid_pvh_spec().build();
  REQUIRE(load_elf_kernel(mem, file).has_value());
  for (size_t len = 0; len < file.size(); ++len) {
    // A copy of exactly len bytes, so ASan flags any read past the prefix.
    const Bytes prefix(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(len));
    auto r = load_elf_kernel(mem, prefix);
    INFO("prefix length " << len);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code() == ENOEXEC);
  }
}

TEST_CASE("x86 ELF loader refuses wrong identification and header fields", "[x86][elf][hostile]") {
  const Bytes good = valid_pvh_spec().build();
  auto with = [&](uint64_t off, auto value) {
    Bytes b = good;
    put(b, off, value);
    return b;
  };
  CHECK(mentions(inspect_error(with(0, uint8_t{0x7e})), "no ELF magic"));
  CHECK(mentions(inspect_error(with(EI_CLASS, uint8_t{ELFCLASS32})), "ELFCLASS64"));
  CHECK(mentions(inspect_error(with(EI_DATA, uint8_t{ELFDATA2MSB})), "little-endian"));
  CHECK(mentions(inspect_error(with(offsetof(Elf64_Ehdr, e_type), uint16_t{ET_DYN})), "ET_EXEC"));
  CHECK(mentions(inspect_error(with(offsetof(Elf64_Ehdr, e_machine), uint16_t{EM_386})), "not x86-64"));
  CHECK(mentions(inspect_error(with(offsetof(Elf64_Ehdr, e_machine), uint16_t{EM_AARCH64})), "not x86-64"));
  CHECK(mentions(inspect_error(with(offsetof(Elf64_Ehdr, e_phentsize), uint16_t{32})), "entry size"));
  CHECK(inspect_error(with(0, uint8_t{0})).code() == ENOEXEC);
}

TEST_CASE("x86 ELF loader refuses bad program header tables", "[x86][elf][hostile]") {
  const Bytes good = valid_pvh_spec().build();
  auto with = [&](uint64_t off, auto value) {
    Bytes b = good;
    put(b, off, value);
    return b;
  };
  CHECK(mentions(inspect_error(with(offsetof(Elf64_Ehdr, e_phnum), uint16_t{0xffff})), "65535 program headers"));
  CHECK(mentions(inspect_error(with(offsetof(Elf64_Ehdr, e_phnum), uint16_t{65})), "at most 64"));
  CHECK(mentions(inspect_error(with(offsetof(Elf64_Ehdr, e_phnum), uint16_t{0})), "no program headers"));
  CHECK(mentions(inspect_error(with(offsetof(Elf64_Ehdr, e_phoff), uint64_t{good.size()})), "past the end"));
  CHECK(mentions(inspect_error(with(offsetof(Elf64_Ehdr, e_phoff), ~uint64_t{0} - 8)), "past the end"));
  // 64 headers would run far past this small file.
  CHECK(mentions(inspect_error(with(offsetof(Elf64_Ehdr, e_phnum), uint16_t{64})), "past the end"));
}

TEST_CASE("x86 ELF loader refuses bad PT_LOAD segments", "[x86][elf][hostile]") {
  const Bytes good = valid_pvh_spec().build();
  auto with = [&](uint64_t off, auto value) {
    Bytes b = good;
    put(b, off, value);
    return b;
  };
  // filesz > memsz
  CHECK(mentions(inspect_error(with(phdr_field(1, offsetof(Elf64_Phdr, p_filesz)), uint64_t{0x3000})),
                 "exceeds p_memsz"));
  // file range past the end, including an offset that would wrap
  CHECK(mentions(inspect_error(with(phdr_field(0, offsetof(Elf64_Phdr, p_offset)), uint64_t{good.size() - 4})),
                 "segment 0: file range"));
  CHECK(mentions(inspect_error(with(phdr_field(0, offsetof(Elf64_Phdr, p_offset)), ~uint64_t{0} - 0x10)),
                 "past the end of the file"));
  // paddr + memsz overflows
  CHECK(mentions(inspect_error(with(phdr_field(1, offsetof(Elf64_Phdr, p_paddr)), ~uint64_t{0} - 0x100)),
                 "overflows"));
  // huge memsz: bounded total
  CHECK(mentions(inspect_error(with(phdr_field(1, offsetof(Elf64_Phdr, p_memsz)), uint64_t{3} << 30)),
                 "more than 2048 MiB"));
  // overlapping segments: data moved onto the text
  CHECK(mentions(inspect_error(with(phdr_field(1, offsetof(Elf64_Phdr, p_paddr)), uint64_t{0x100200})),
                 "overlap"));
  // only empty PT_LOADs
  {
    ElfSpec spec;
    spec.segments.push_back(TestSegment{PT_NOTE, 0, make_pvh_note(0x100000), 0, 4});
    CHECK(mentions(inspect_error(spec.build()), "no loadable"));
  }
}

TEST_CASE("x86 ELF loader checks segments against guest RAM and the boot area", "[x86][elf][hostile]") {
  FakeGuestMemory mem(kRam);
  SECTION("outside RAM: ENOMEM with the segment named") {
    ElfSpec spec = valid_pvh_spec();
    spec.segments[1].paddr = kRam - 0x1000;  // memsz 0x2000 runs off the end
    auto r = load_elf_kernel(mem, spec.build());
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code() == ENOMEM);
    CHECK(mentions(r.error(), "kernel ELF: segment 1 (paddr 0xfff000, memsz 0x2000) lies outside guest RAM"));
    // Nothing was written: segment 0 comes first but was not loaded either.
    CHECK(std::all_of(mem.host(0x100000), mem.host(0x100300), [](uint8_t b) { return b == 0; }));
  }
  SECTION("below 1 MiB: ENOEXEC") {
    ElfSpec spec = valid_pvh_spec();
    spec.segments[0].paddr = 0x8000;
    spec.segments[2] = TestSegment{PT_NOTE, 0, make_pvh_note(0x8000), 0, 4};
    auto r = load_elf_kernel(mem, spec.build());
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code() == ENOEXEC);
    CHECK(mentions(r.error(), "starts below 0x100000"));
  }
  SECTION("in or above the MMIO hole: ENOEXEC") {
    for (uint64_t paddr : {uint64_t{0xbffff000}, uint64_t{0xfec00000}, uint64_t{0x100000000}}) {
      ElfSpec spec = valid_pvh_spec();
      spec.segments[1].paddr = paddr;
      auto r = load_elf_kernel(mem, spec.build());
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error().code() == ENOEXEC);
      CHECK(mentions(r.error(), "ends above 0xc0000000"));
    }
  }
}

TEST_CASE("x86 ELF loader survives hostile notes", "[x86][elf][hostile]") {
  ElfSpec spec = valid_pvh_spec();
  const Bytes good = spec.build();
  const uint64_t note_off = get<uint64_t>(good, phdr_field(2, offsetof(Elf64_Phdr, p_offset)));
  auto with = [&](uint64_t off, auto value) {
    Bytes b = good;
    put(b, off, value);
    return b;
  };
  CHECK(mentions(inspect_error(with(note_off + 0, uint32_t{0xffffffff})), "extends past the end of its segment"));
  CHECK(mentions(inspect_error(with(note_off + 4, uint32_t{0xfffffffe})), "extends past the end of its segment"));
  CHECK(mentions(inspect_error(with(note_off + 4, uint32_t{0xfffffffd})), "extends past the end of its segment"));
  // A note segment shorter than a note header.
  CHECK(mentions(inspect_error(with(phdr_field(2, offsetof(Elf64_Phdr, p_filesz)), uint64_t{7})), "truncated"));
  // The PVH note's descriptor: wrong size, above 4 GiB, outside the loaded code.
  spec.segments[2].data = make_pvh_note(kTestPvhEntry, 2);
  CHECK(mentions(inspect_error(spec.build()), "2-byte descriptor"));
  spec.segments[2].data = make_pvh_note(0x100000000 + kTestPvhEntry, 8);
  CHECK(mentions(inspect_error(spec.build()), "above 4 GiB"));
  spec.segments[2].data = make_pvh_note(0x102100, 8);  // in .bss: no code there
  CHECK(mentions(inspect_error(spec.build()), "not inside the file-backed part"));
  // Two PVH notes disagreeing would be ambiguous.
  Bytes two = make_pvh_note(kTestPvhEntry);
  const Bytes again = make_pvh_note(kTestPvhEntry + 4);
  two.insert(two.end(), again.begin(), again.end());
  spec.segments[2].data = two;
  CHECK(mentions(inspect_error(spec.build()), "more than one"));
}

TEST_CASE("x86 ELF loader walks notes padded to 8 in an 8-aligned PT_NOTE", "[x86][elf]") {
  ElfSpec spec = valid_pvh_spec();
  // First note: namesz 8, so its descriptor starts at align8(12 + 8) = 24 (not 20) and the next
  // note at align8(24 + 4) = 32 (not 24), as binutils lays out 8-aligned notes.
  Bytes n;
  put<uint32_t>(n, 0, 8);
  put<uint32_t>(n, 4, 4);
  put<uint32_t>(n, 8, 1);
  n.insert(n.end(), {'A', 'B', 'C', 'D', 'E', 'F', 'G', 0});
  n.resize(24);
  put<uint32_t>(n, 24, 0x12345678);
  n.resize(32);
  // Then the Xen note: descriptor at 32 + align8(12 + 4) = 48.
  put<uint32_t>(n, 32, 4);
  put<uint32_t>(n, 36, 8);
  put<uint32_t>(n, 40, 18);
  n.insert(n.end(), {'X', 'e', 'n', 0});
  put<uint64_t>(n, 48, kTestPvhEntry);
  spec.segments[2].data = n;
  spec.segments[2].align = 8;
  auto k = inspect_elf_kernel(spec.build());
  REQUIRE(k.has_value());
  REQUIRE(k->pvh_entry.has_value());
  CHECK(*k->pvh_entry == kTestPvhEntry);
  // The same bytes read with 4-byte alignment fall out of step and are refused or miss the note.
  spec.segments[2].align = 4;
  auto k4 = inspect_elf_kernel(spec.build());
  CHECK((!k4.has_value() || !k4->pvh_entry.has_value()));
}
