// Loads the real guests through the x86 kernel loaders, each checked against values read from
// the file independently of the loader:
// - the probe guest (tests/guest), built by this project: CMake builds it before this test and
//   bakes its path in (HCNODE_PROBE_ELF_PATH), so that case always runs;
// - the Linux test guest's vmlinux (PVH note) and bzImage: HCNODE_GUEST_VMLINUX and
//   HCNODE_GUEST_BZIMAGE. Those cases are hidden from the unit run (tag [.]) and registered as
//   an integration test, tests/integration/real_kernels_test.sh, which takes the kernel from
//   deploy/guest/kernel.sh (../shared/guest-kernel beside the checkout, $HCNODE_GUEST_KERNEL or
//   the project's own cached build). A missing kernel exits 77 (CTest: skipped), and fails the
//   case with CI=true, like every component-dependent test (tests/integration/requirements.hpp).
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>

#include "compute/arch/x86/boot_layout.hpp"
#include "compute/arch/x86/bzimage.hpp"
#include "compute/arch/x86/elf_loader.hpp"
#include "compute/arch/x86/kernel_loader.hpp"
#include "compute/arch/x86/pvh.hpp"
#include "tests/fakes/fake_guest_memory.hpp"
#include "tests/unit/compute/arch_x86/test_images.hpp"

using namespace hcnode;
using namespace hcnode::compute::x86;
using namespace hcnode::testing::x86;
using hcnode::testing::FakeGuestMemory;

namespace {

std::optional<Bytes> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return std::nullopt;
  }
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The file named by environment variable `name`: skipped (exit 77) when it is not set or not
// readable, a failure with CI=true (the rule of tests/integration/requirements.hpp).
Bytes require_kernel_file(const char* name) {
  const char* path = std::getenv(name);
  const std::string why = path == nullptr || *path == '\0'
                              ? std::string(name) + " is not set (tests/integration/real_kernels_test.sh sets it)"
                              : std::string(name) + "=" + path + " is not readable";
  if (path != nullptr && *path != '\0') {
    if (auto file = read_file(path)) {
      return *file;
    }
  }
  const char* ci = std::getenv("CI");
  if (ci != nullptr && std::string(ci) == "true") {
    FAIL("missing component in CI (CI=true): " << why);
  }
  std::fprintf(stderr, "SKIPPED: %s\n", why.c_str());
  std::fflush(stderr);
  std::_Exit(77);
}

// The oracle: a byte search for a Xen PHYS32_ENTRY note header (namesz 4, descsz 4 or 8,
// type 18, "Xen\0") anywhere in the file, without parsing ELF structures.
std::optional<uint64_t> naive_pvh_note(const Bytes& file) {
  for (size_t i = 0; i + 24 <= file.size(); i += 4) {
    const uint32_t namesz = get<uint32_t>(file, i);
    const uint32_t descsz = get<uint32_t>(file, i + 4);
    const uint32_t type = get<uint32_t>(file, i + 8);
    if (namesz == 4 && (descsz == 4 || descsz == 8) && type == 18 && std::memcmp(&file[i + 12], "Xen", 4) == 0) {
      return descsz == 8 ? get<uint64_t>(file, i + 16) : get<uint32_t>(file, i + 16);
    }
  }
  return std::nullopt;
}

void check_pvh_kernel(const Bytes& file, uint64_t ram) {
  const auto oracle = naive_pvh_note(file);
  REQUIRE(oracle.has_value());
  FakeGuestMemory mem(ram);
  auto setup = load_kernel(mem, file, {}, "console=ttyS0", 2);
  REQUIRE(setup.has_value());
  CHECK(setup->format == KernelFormat::kPvhElf);
  CHECK(setup->entry == *oracle);
  CHECK(setup->bsp.regs.rbx == kPvhStartInfoAddr);
  // Every loaded byte matches the file at the segment's offset.
  const ElfKernel elf = inspect_elf_kernel(file).value();
  for (const ElfSegment& s : elf.segments) {
    INFO("segment " << s.index);
    CHECK(std::memcmp(mem.host(s.paddr), file.data() + s.offset, s.file_size) == 0);
  }
  WARN("PVH entry " << std::hex << *oracle << ", e_entry " << elf.entry << ", " << std::dec
                    << elf.segments.size() << " segments, end " << std::hex << elf.end_addr);
}

}  // namespace

TEST_CASE("x86 real probe guest ELF loads through PVH", "[x86][real]") {
  // Built by the probe-guest target, a dependency of this executable: never missing.
  const auto file = read_file(HCNODE_PROBE_ELF_PATH);
  INFO("probe guest " << HCNODE_PROBE_ELF_PATH);
  REQUIRE(file.has_value());
  check_pvh_kernel(*file, 64ull << 20);
  // The probe's ELF entry and its PVH note both name probe_start32 at 1 MiB.
  const ElfKernel elf = inspect_elf_kernel(*file).value();
  CHECK(elf.pvh_entry == std::optional<uint32_t>(static_cast<uint32_t>(elf.entry)));
  CHECK(elf.lowest_addr == 0x100000);
}

TEST_CASE("x86 real Linux vmlinux loads through PVH", "[x86][real][linux-kernel][.]") {
  const std::optional<Bytes> file = require_kernel_file("HCNODE_GUEST_VMLINUX");
  check_pvh_kernel(*file, 128ull << 20);
  const ElfKernel elf = inspect_elf_kernel(*file).value();
  // Linux loads at LOAD_PHYSICAL_ADDR (16 MiB by default) and its PVH entry is in .text there.
  CHECK(elf.lowest_addr == elf.entry);
  CHECK(*elf.pvh_entry > elf.lowest_addr);
  CHECK(*elf.pvh_entry < elf.segments.front().paddr + elf.segments.front().file_size);
}

TEST_CASE("x86 real Linux bzImage loads through the 64-bit boot protocol",
          "[x86][real][linux-kernel][.]") {
  const std::optional<Bytes> file = require_kernel_file("HCNODE_GUEST_BZIMAGE");
  REQUIRE(file->size() > 0x268);  // holds the boot.rst header fields read below
  // Independent reads of the header (boot.rst offsets).
  const uint8_t setup_sects = (*file)[0x1f1] == 0 ? 4 : (*file)[0x1f1];
  const auto version = get<uint16_t>(*file, 0x206);
  const auto init_size = get<uint32_t>(*file, 0x260);
  const auto pref_address = get<uint64_t>(*file, 0x258);
  const bool relocatable = (*file)[0x234] != 0;
  const auto cmdline_size = get<uint32_t>(*file, 0x238);

  auto img = parse_bzimage(*file);
  REQUIRE(img.has_value());
  CHECK(img->header.version == version);
  CHECK(img->setup_size == (setup_sects + 1u) * 512u);
  CHECK(img->payload.size() == file->size() - img->setup_size);
  CHECK(img->cmdline_max == cmdline_size);
  if (!relocatable) {
    CHECK(img->runtime_start == pref_address);
  }
  CHECK(img->runtime_end == img->runtime_start + init_size);

  FakeGuestMemory mem(128ull << 20);
  const Bytes initrd = pattern(1 << 20, 4);
  auto setup = load_kernel(mem, *file, initrd, "console=ttyS0 acpi=off", 2);
  REQUIRE(setup.has_value());
  CHECK(setup->format == KernelFormat::kBzImage);
  CHECK(setup->entry == 0x100200);
  CHECK(std::memcmp(mem.host(0x100000), file->data() + img->setup_size, img->payload.size()) == 0);
  CHECK(setup->initrd->addr >= img->runtime_end);
  const auto bp = mem.read_obj<boot_params>(kZeroPageAddr).value();
  CHECK(bp.hdr.version == version);
  CHECK(bp.hdr.type_of_loader == 0xff);
  CHECK(bp.hdr.cmd_line_ptr == kCmdlineAddr);
  WARN("bzImage protocol " << std::hex << version << ", runtime " << img->runtime_start << "-"
                           << img->runtime_end << ", payload " << img->payload.size() << " bytes");
}
