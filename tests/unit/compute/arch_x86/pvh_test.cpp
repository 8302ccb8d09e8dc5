#include <catch2/catch.hpp>

#include "compute/arch/x86/boot_layout.hpp"
#include "compute/arch/x86/pvh.hpp"
#include "tests/fakes/fake_guest_memory.hpp"

using namespace hcnode;
using namespace hcnode::compute::x86;
using hcnode::testing::FakeGuestMemory;

TEST_CASE("x86 PVH start_info layout matches Xen's start_info.h", "[x86][pvh]") {
  // Offsets from the table in xen/include/public/arch-x86/hvm/start_info.h.
  STATIC_REQUIRE(offsetof(HvmStartInfo, magic) == 0);
  STATIC_REQUIRE(offsetof(HvmStartInfo, version) == 4);
  STATIC_REQUIRE(offsetof(HvmStartInfo, flags) == 8);
  STATIC_REQUIRE(offsetof(HvmStartInfo, modlist_paddr) == 16);
  STATIC_REQUIRE(offsetof(HvmStartInfo, rsdp_paddr) == 32);
  STATIC_REQUIRE(offsetof(HvmStartInfo, memmap_entries) == 48);
  STATIC_REQUIRE(sizeof(HvmStartInfo) == 56);
  STATIC_REQUIRE(sizeof(HvmModlistEntry) == 32);
  STATIC_REQUIRE(sizeof(HvmMemmapEntry) == 24);
  CHECK(kHvmStartMagic == 0x336ec578);
}

TEST_CASE("x86 PVH start_info carries memmap, command line and the initrd module", "[x86][pvh]") {
  FakeGuestMemory mem(64 << 20);
  const auto map = build_memory_map(mem.ram_size()).value();
  const InitrdPlacement initrd{0x3000000, 0x12345};

  auto addr = write_pvh_start_info(mem, kCmdlineAddr, initrd, map);
  REQUIRE(addr.has_value());
  CHECK(*addr == kPvhStartInfoAddr);

  const auto info = mem.read_obj<HvmStartInfo>(*addr).value();
  CHECK(info.magic == kHvmStartMagic);
  CHECK(info.version == 1);
  CHECK(info.flags == 0);
  CHECK(info.cmdline_paddr == kCmdlineAddr);
  CHECK(info.rsdp_paddr == 0);
  CHECK(info.reserved == 0);
  REQUIRE(info.nr_modules == 1);
  const auto mod = mem.read_obj<HvmModlistEntry>(info.modlist_paddr).value();
  CHECK(mod.paddr == 0x3000000);
  CHECK(mod.size == 0x12345);
  CHECK(mod.cmdline_paddr == 0);

  REQUIRE(info.memmap_entries == map.size());
  for (size_t i = 0; i < map.size(); ++i) {
    const auto e = mem.read_obj<HvmMemmapEntry>(info.memmap_paddr + i * sizeof(HvmMemmapEntry)).value();
    CHECK(e.addr == map[i].addr);
    CHECK(e.size == map[i].size);
    CHECK(e.type == static_cast<uint32_t>(map[i].type));
    CHECK(e.reserved == 0);
  }
  // The structures do not overlap each other.
  CHECK(info.modlist_paddr >= *addr + sizeof(HvmStartInfo));
  CHECK(info.memmap_paddr >= info.modlist_paddr + sizeof(HvmModlistEntry));
  CHECK(info.memmap_paddr + map.size() * sizeof(HvmMemmapEntry) <= kZeroPageAddr);
}

TEST_CASE("x86 PVH start_info without an initrd has no modules", "[x86][pvh]") {
  FakeGuestMemory mem(64 << 20);
  const auto map = build_memory_map(mem.ram_size()).value();
  REQUIRE(write_pvh_start_info(mem, kCmdlineAddr, std::nullopt, map).has_value());
  const auto info = mem.read_obj<HvmStartInfo>(kPvhStartInfoAddr).value();
  CHECK(info.nr_modules == 0);
  CHECK(info.modlist_paddr == 0);
}
