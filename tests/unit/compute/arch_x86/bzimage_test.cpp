#include <catch2/catch.hpp>

#include <algorithm>

#include "compute/arch/x86/boot_layout.hpp"
#include "compute/arch/x86/bzimage.hpp"
#include "tests/fakes/fake_guest_memory.hpp"
#include "tests/unit/compute/arch_x86/test_images.hpp"

using namespace hcnode;
using namespace hcnode::compute::x86;
using namespace hcnode::testing::x86;
using hcnode::testing::FakeGuestMemory;

namespace {

Error parse_error(const Bytes& file) {
  auto r = parse_bzimage(file);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code() == ENOEXEC);
  return r.error();
}

bool mentions(const Error& e, const std::string& text) {
  return e.context().find(text) != std::string::npos;
}

template <typename T>
Bytes with(Bytes b, uint64_t off, T value) {
  put(b, off, value);
  return b;
}

}  // namespace

TEST_CASE("x86 bzImage header parses into load and runtime addresses", "[x86][bzimage]") {
  const Bytes file = valid_bzimage(0x1000);
  auto img = parse_bzimage(file);
  REQUIRE(img.has_value());
  CHECK(img->header.version == 0x020f);
  CHECK(img->header_len == 0x26c - 0x1f1);
  CHECK(img->setup_size == 5 * 512);
  CHECK(img->payload.size() == 0x1000);
  CHECK(img->payload.data() == file.data() + 5 * 512);
  CHECK(img->load_addr == 0x100000);
  CHECK(img->entry64 == 0x100200);
  // Relocatable: max(load address, pref_address) aligned to kernel_alignment.
  CHECK(img->runtime_start == 0x1000000);
  CHECK(img->runtime_end == 0x1800000);
  CHECK(img->footprint_end == 0x1800000);
  CHECK(img->cmdline_max == 2047);
  CHECK(img->initrd_limit == 0x80000000);
}

TEST_CASE("x86 bzImage runtime address follows the boot protocol's algorithm", "[x86][bzimage]") {
  SECTION("non-relocatable: pref_address") {
    Bytes b = with(valid_bzimage(), HCN_HDR_OFF(relocatable_kernel), uint8_t{0});
    b = with(b, HCN_HDR_OFF(pref_address), uint64_t{0x1200000});
    CHECK(parse_bzimage(b).value().runtime_start == 0x1200000);
  }
  SECTION("relocatable without pref_address: load address aligned up") {
    const Bytes b = with(valid_bzimage(), HCN_HDR_OFF(pref_address), uint64_t{0});
    CHECK(parse_bzimage(b).value().runtime_start == 0x200000);
  }
  SECTION("setup_sects 0 means 4") {
    const Bytes b = with(valid_bzimage(), HCN_HDR_OFF(setup_sects), uint8_t{0});
    CHECK(parse_bzimage(b).value().setup_size == 5 * 512);
  }
}

TEST_CASE("x86 bzImage loads its payload at 1 MiB and fills the zero page", "[x86][bzimage][zeropage]") {
  FakeGuestMemory mem(64 << 20);
  const Bytes file = valid_bzimage(0x1000);
  const BzImage img = parse_bzimage(file).value();
  REQUIRE(load_bzimage(mem, img).has_value());
  CHECK(std::equal(file.begin() + 5 * 512, file.end(), mem.host(0x100000)));

  const auto map = build_memory_map(mem.ram_size()).value();
  const InitrdPlacement initrd{0x3c00000, 0x200000};
  REQUIRE(write_zero_page(mem, img, kCmdlineAddr, initrd, map).has_value());
  const auto bp = mem.read_obj<boot_params>(kZeroPageAddr).value();
  // Copied from the file.
  CHECK(bp.hdr.boot_flag == 0xaa55);
  CHECK(bp.hdr.header == 0x53726448);
  CHECK(bp.hdr.version == 0x020f);
  CHECK(bp.hdr.setup_sects == 4);
  CHECK(bp.hdr.init_size == 0x800000);
  CHECK(bp.hdr.cmdline_size == 2047);
  // Written by the loader.
  CHECK(bp.hdr.type_of_loader == 0xff);
  CHECK(bp.hdr.loadflags == LOADED_HIGH);
  CHECK(bp.hdr.code32_start == 0x100000);
  CHECK(bp.hdr.cmd_line_ptr == kCmdlineAddr);
  CHECK(bp.ext_cmd_line_ptr == 0);
  CHECK(bp.hdr.ramdisk_image == 0x3c00000);
  CHECK(bp.hdr.ramdisk_size == 0x200000);
  CHECK(bp.ext_ramdisk_image == 0);
  CHECK(bp.ext_ramdisk_size == 0);
  CHECK(bp.hdr.setup_data == 0);
  CHECK(bp.sentinel == 0);
  CHECK(bp.acpi_rsdp_addr == 0);
  REQUIRE(bp.e820_entries == 3);
  CHECK(bp.e820_table[0].addr == 0);
  CHECK(bp.e820_table[0].size == 0x9fc00);
  CHECK(bp.e820_table[0].type == 1);
  CHECK(bp.e820_table[1].addr == 0x9fc00);
  CHECK(bp.e820_table[1].type == 2);
  CHECK(bp.e820_table[2].addr == 0x100000);
  CHECK(bp.e820_table[2].size == (64u << 20) - 0x100000);
  CHECK(bp.e820_table[2].type == 1);
}

TEST_CASE("x86 bzImage zero page overwrites stale memory and copies only the file's header", "[x86][zeropage]") {
  FakeGuestMemory mem(64 << 20);
  std::fill_n(mem.host(kZeroPageAddr), 4096, uint8_t{0xcc});
  // A header that ends at 0x268 (protocol 2.12 without kernel_info_offset): the rest is zero.
  Bytes file = with(valid_bzimage(), 0x201, uint8_t{0x66});
  file = with(file, HCN_HDR_OFF(kernel_info_offset), uint32_t{0xdeadbeef});
  const BzImage img = parse_bzimage(file).value();
  CHECK(img.header_len == 0x268 - 0x1f1);
  REQUIRE(write_zero_page(mem, img, kCmdlineAddr, std::nullopt, build_memory_map(mem.ram_size()).value()));
  const auto bp = mem.read_obj<boot_params>(kZeroPageAddr).value();
  CHECK(bp.hdr.kernel_info_offset == 0);
  CHECK(bp.hdr.ramdisk_image == 0);
  CHECK(bp.hdr.ramdisk_size == 0);
  CHECK(bp.screen_info.orig_video_isVGA == 0);
  CHECK(bp.e820_entries == 3);
}

TEST_CASE("x86 bzImage refuses bad signatures and old protocols", "[x86][bzimage][hostile]") {
  const Bytes good = valid_bzimage();
  CHECK(mentions(parse_error(with(good, HCN_HDR_OFF(boot_flag), uint16_t{0x55aa})), "0xAA55"));
  CHECK(mentions(parse_error(with(good, HCN_HDR_OFF(header), uint32_t{0x53726449})), "HdrS"));
  CHECK(mentions(parse_error(with(good, HCN_HDR_OFF(version), uint16_t{0x020b})), "2.11 is too old"));
  CHECK(mentions(parse_error(with(good, HCN_HDR_OFF(loadflags), uint8_t{0})), "zImage"));
  CHECK(mentions(parse_error(with(good, HCN_HDR_OFF(xloadflags), uint16_t{0})), "XLF_KERNEL_64"));
  // The jump displacement says the header ends at 0x232, before the 2.12 fields.
  CHECK(mentions(parse_error(with(good, 0x201, uint8_t{0x30})), "before the fields of protocol 2.12"));
}

TEST_CASE("x86 bzImage refuses hostile sizes and offsets", "[x86][bzimage][hostile]") {
  const Bytes good = valid_bzimage();
  CHECK(mentions(parse_error(with(good, HCN_HDR_OFF(setup_sects), uint8_t{200})), "past the end of the file"));
  CHECK(mentions(parse_error(with(good, HCN_HDR_OFF(syssize), uint32_t{0x10000})), "truncated"));
  CHECK(mentions(parse_error(with(good, HCN_HDR_OFF(init_size), uint32_t{0})), "init_size is 0"));
  CHECK(mentions(parse_error(with(good, HCN_HDR_OFF(kernel_alignment), uint32_t{0x300000})), "power of two"));
  CHECK(mentions(parse_error(with(good, HCN_HDR_OFF(pref_address), ~uint64_t{0} - 0xfff)), "above 4 GiB"));
  {
    Bytes b = with(good, HCN_HDR_OFF(relocatable_kernel), uint8_t{0});
    CHECK(mentions(parse_error(with(b, HCN_HDR_OFF(pref_address), uint64_t{0x1000})), "outside [1 MiB, 4 GiB]"));
  }
  // A payload too small to hold the 64-bit entry point at +0x200.
  CHECK(mentions(parse_error(valid_bzimage(0x100)), "before its 64-bit entry point"));
}

TEST_CASE("x86 bzImage refuses every truncated prefix", "[x86][bzimage][hostile]") {
  const Bytes file = valid_bzimage(0x1000);
  REQUIRE(parse_bzimage(file).has_value());
  for (size_t len = 0; len < file.size(); ++len) {
    const Bytes prefix(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(len));
    INFO("prefix length " << len);
    REQUIRE_FALSE(parse_bzimage(prefix).has_value());
  }
}

TEST_CASE("x86 bzImage too big for the guest's RAM gives ENOMEM", "[x86][bzimage][hostile]") {
  FakeGuestMemory mem(16 << 20);  // the kernel runs at 16 MiB with init_size 8 MiB
  const Bytes file = valid_bzimage();
  auto r = load_bzimage(mem, parse_bzimage(file).value());
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code() == ENOMEM);
  CHECK(mentions(r.error(), "needs RAM up to 0x1800000"));
  CHECK(mentions(r.error(), "16 MiB of RAM"));
}
