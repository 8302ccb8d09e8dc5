#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

#include "compute/arch/x86/boot_layout.hpp"
#include "compute/arch/x86/bzimage.hpp"
#include "compute/arch/x86/kernel_loader.hpp"
#include "compute/arch/x86/mp_spec.hpp"
#include "compute/arch/x86/pvh.hpp"
#include "compute/memory/guest_ram.hpp"
#include "tests/fakes/fake_guest_memory.hpp"
#include "tests/unit/compute/arch_x86/test_images.hpp"

using namespace hcnode;
using namespace hcnode::compute::x86;
using namespace hcnode::testing::x86;
using hcnode::testing::FakeGuestMemory;

namespace {

constexpr uint64_t kMiB = 1ull << 20;

std::string read_cstring(const compute::GuestMemory& mem, uint64_t addr, size_t max) {
  std::string s;
  for (size_t i = 0; i < max; ++i) {
    const auto c = mem.read_obj<char>(addr + i).value();
    if (c == '\0') {
      return s;
    }
    s.push_back(c);
  }
  FAIL("no NUL within " << max << " bytes");
  return s;
}

bool mentions(const Error& e, const std::string& text) {
  return e.context().find(text) != std::string::npos;
}

}  // namespace

TEST_CASE("x86 kernel format detection", "[x86][loader]") {
  CHECK(detect_kernel_format(valid_pvh_spec().build()).value() == KernelFormat::kPvhElf);
  CHECK(detect_kernel_format(valid_bzimage()).value() == KernelFormat::kBzImage);
  const Bytes gzip = {0x1f, 0x8b, 0x08, 0x00};
  auto r = detect_kernel_format(gzip);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code() == ENOEXEC);
  CHECK(mentions(r.error(), "not a bzImage or ELF kernel"));
  CHECK(detect_kernel_format(Bytes{}).error().code() == ENOEXEC);
  CHECK(kernel_format_name(KernelFormat::kBzImage) == "bzImage");
}

TEST_CASE("x86 load_kernel boots a PVH ELF: start_info, cmdline, initrd module, MP table", "[x86][loader][pvh]") {
  FakeGuestMemory mem(128 * kMiB);
  const Bytes kernel = valid_pvh_spec().build();
  const Bytes initrd = pattern(3 * kMiB + 5, 7);
  const std::string cmdline = "console=ttyS0 probe.mode=write";

  auto setup = load_kernel(mem, kernel, initrd, cmdline, 2);
  REQUIRE(setup.has_value());
  CHECK(setup->format == KernelFormat::kPvhElf);
  CHECK(setup->entry == kTestPvhEntry);
  CHECK(setup->bsp.regs.rip == kTestPvhEntry);
  CHECK(setup->bsp.regs.rbx == setup->boot_info_addr);
  CHECK(setup->bsp.cr0 == (kCr0Pe | kCr0Et));
  CHECK(setup->kernel_ranges == std::vector<GuestRange>{{0x100000, 0x300}, {0x102000, 0x2000}});
  CHECK(setup->kernel_end == 0x104000);

  // The initrd sits 4 KiB aligned at the top of RAM, intact.
  REQUIRE(setup->initrd.has_value());
  CHECK(setup->initrd->size == initrd.size());
  CHECK(setup->initrd->addr % 4096 == 0);
  CHECK(setup->initrd->addr + setup->initrd->size <= 128 * kMiB);
  CHECK(setup->initrd->addr + setup->initrd->size > 128 * kMiB - 4096);
  CHECK(std::equal(initrd.begin(), initrd.end(), mem.host(setup->initrd->addr)));

  const auto info = mem.read_obj<HvmStartInfo>(setup->boot_info_addr).value();
  CHECK(info.magic == kHvmStartMagic);
  CHECK(read_cstring(mem, info.cmdline_paddr, 4096) == cmdline);
  REQUIRE(info.nr_modules == 1);
  const auto mod = mem.read_obj<HvmModlistEntry>(info.modlist_paddr).value();
  CHECK(mod.paddr == setup->initrd->addr);
  CHECK(mod.size == initrd.size());
  CHECK(info.memmap_entries == 3);
  CHECK(setup->memory_map.size() == 3);

  CHECK(setup->mp_table.floating_pointer_addr == kMpTableAddr);
  const auto hdr = mem.read_obj<mp::ConfigHeader>(setup->mp_table.config_table_addr).value();
  CHECK(hdr.entry_count == 2 + 2 + 1 + 16 + 2);
}

TEST_CASE("x86 load_kernel boots a bzImage: zero page, 64-bit entry, initrd below initrd_addr_max", "[x86][loader][linux64]") {
  FakeGuestMemory mem(64 * kMiB);
  Bytes kernel = valid_bzimage(0x2000);
  put(kernel, HCN_HDR_OFF(initrd_addr_max), uint32_t{0x2ffffff});  // initrd must end by 48 MiB
  const Bytes initrd = pattern(kMiB, 9);
  auto setup = load_kernel(mem, kernel, initrd, "console=ttyS0", 1);
  REQUIRE(setup.has_value());
  CHECK(setup->format == KernelFormat::kBzImage);
  CHECK(setup->entry == 0x100200);
  CHECK(setup->bsp.regs.rsi == kZeroPageAddr);
  CHECK(setup->bsp.efer == (kEferLme | kEferLma));
  CHECK(setup->boot_info_addr == kZeroPageAddr);
  CHECK(setup->kernel_ranges == std::vector<GuestRange>{{0x100000, 0x2000}});
  CHECK(setup->kernel_end == 0x1800000);
  REQUIRE(setup->initrd.has_value());
  CHECK(setup->initrd->addr == 0x3000000 - kMiB);
  CHECK(std::equal(initrd.begin(), initrd.end(), mem.host(setup->initrd->addr)));

  const auto bp = mem.read_obj<boot_params>(kZeroPageAddr).value();
  CHECK(bp.hdr.ramdisk_image == setup->initrd->addr);
  CHECK(bp.hdr.ramdisk_size == kMiB);
  CHECK(read_cstring(mem, bp.hdr.cmd_line_ptr, 2048) == "console=ttyS0");
  CHECK(bp.e820_entries == 3);
}

TEST_CASE("x86 load_kernel refuses a command line longer than cmdline_size", "[x86][loader][hostile]") {
  FakeGuestMemory mem(64 * kMiB);
  Bytes kernel = valid_bzimage();
  put(kernel, HCN_HDR_OFF(cmdline_size), uint32_t{16});
  CHECK(load_kernel(mem, kernel, {}, std::string(16, 'x'), 1).has_value());
  auto r = load_kernel(mem, kernel, {}, std::string(17, 'x'), 1);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code() == E2BIG);
  CHECK(mentions(r.error(), "17 bytes; this kernel accepts at most 16"));
  // PVH has no cmdline_size: the limit is the 64 KiB area.
  CHECK(load_kernel(mem, valid_pvh_spec().build(), {}, std::string(kCmdlineAreaSize, 'x'), 1).error().code() == E2BIG);
  CHECK(load_kernel(mem, kernel, {}, std::string("a\0b", 3), 1).error().code() == EINVAL);
}

TEST_CASE("x86 load_kernel reports what does not fit", "[x86][loader][hostile]") {
  SECTION("an initrd larger than the RAM left above the kernel") {
    FakeGuestMemory mem(32 * kMiB);
    const Bytes initrd(31 * kMiB, 1);
    auto r = load_kernel(mem, valid_pvh_spec().build(), initrd, "", 1);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code() == ENOMEM);
    CHECK(mentions(r.error(), "initrd (31 MiB) does not fit"));
    CHECK(mentions(r.error(), "with 32 MiB of RAM"));
  }
  SECTION("an initrd that would overlap the bzImage's runtime area") {
    FakeGuestMemory mem(26 * kMiB);  // runtime area ends at 24 MiB
    auto r = load_kernel(mem, valid_bzimage(), Bytes(3 * kMiB, 1), "", 1);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code() == ENOMEM);
  }
  SECTION("a PVH ELF without its note") {
    FakeGuestMemory mem(32 * kMiB);
    ElfSpec spec = valid_pvh_spec();
    spec.segments.pop_back();
    auto r = load_kernel(mem, spec.build(), {}, "", 1);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code() == ENOEXEC);
    CHECK(mentions(r.error(), "kernel ELF: no Xen PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)"));
    CHECK(*mem.host(0x100000) == 0);  // refused before anything was copied
  }
  SECTION("too many vCPUs, before anything is loaded") {
    FakeGuestMemory mem(32 * kMiB);
    auto r = load_kernel(mem, valid_pvh_spec().build(), {}, "", 255);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code() == EINVAL);
    CHECK(*mem.host(0x100000) == 0);
  }
}

TEST_CASE("x86 load_kernel on a 5 GiB guest keeps boot data below the MMIO hole", "[x86][loader]") {
  auto ram = compute::GuestRam::create(5ull << 30);
  REQUIRE(ram.has_value());
  const Bytes initrd = pattern(2 * kMiB, 5);
  auto setup = load_kernel(*ram, valid_bzimage(), initrd, "console=ttyS0", 4);
  REQUIRE(setup.has_value());
  REQUIRE(setup->memory_map.size() == 4);
  CHECK(setup->memory_map[3] == E820Entry{4ull << 30, 2ull << 30, E820Type::kRam});
  REQUIRE(setup->initrd.has_value());
  // initrd_addr_max 0x7fffffff: the initrd ends at 2 GiB.
  CHECK(setup->initrd->addr + setup->initrd->size == 0x80000000);
  const auto bp = ram->read_obj<boot_params>(kZeroPageAddr).value();
  CHECK(bp.e820_entries == 4);
  CHECK(bp.e820_table[3].addr == 4ull << 30);

  // PVH: no initrd_addr_max, so the initrd goes just below 3 GiB.
  auto pvh = load_kernel(*ram, valid_pvh_spec().build(), initrd, "", 4);
  REQUIRE(pvh.has_value());
  CHECK(pvh->initrd->addr + pvh->initrd->size == compute::kMmioHoleStart);
}
