#include "compute/arch/x86/bzimage.hpp"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>

#include "base/endian.hpp"
#include "compute/arch/x86/boot_layout.hpp"
#include "compute/arch/x86/hex.hpp"

namespace hcnode::compute::x86 {
namespace {

std::unexpected<Error> bad_bzimage(const std::string& what) {
  return fail(ENOEXEC, "bzImage: " + what);
}

// The header through handover_offset is what protocol 2.12 defines; every field we use lies
// inside it.
constexpr uint64_t kMinHeaderLen = offsetof(setup_header, handover_offset) + 4;

uint32_t low32(uint64_t v) { return static_cast<uint32_t>(v); }
uint32_t high32(uint64_t v) { return static_cast<uint32_t>(v >> 32); }

}  // namespace

static_assert(sizeof(boot_params) == 4096);
static_assert(offsetof(boot_params, hdr) == kSetupHeaderOffset);

Result<BzImage> parse_bzimage(std::span<const uint8_t> file) {
  const uint64_t size = file.size();
  if (size < 0x206) {
    return bad_bzimage("the file is " + std::to_string(size) +
                       " bytes, too short for the setup header at 0x1f1");
  }
  // Both fields lie below 0x206, checked above; boot.rst's header fields are little-endian.
  if (load_le16(file.data() + 0x1fe) != kBootFlag) {
    return bad_bzimage("no boot flag 0xAA55 at offset 0x1fe");
  }
  if (load_le32(file.data() + 0x202) != kHdrSMagic) {
    return bad_bzimage("no \"HdrS\" signature at offset 0x202 (a pre-2.00 kernel?)");
  }
  // The header ends at 0x202 + the byte at 0x201 (the short jump's displacement, boot.rst).
  const uint64_t header_end = 0x202 + uint64_t{file[0x201]};
  const uint64_t header_len = std::min<uint64_t>(header_end - kSetupHeaderOffset, sizeof(setup_header));
  if (size < kSetupHeaderOffset + header_len) {
    return bad_bzimage("the file is " + std::to_string(size) + " bytes; its setup header ends at " +
                       hex(header_end));
  }
  BzImage image;
  image.header_len = header_len;
  // SAFETY: setup_header is a packed, trivially copyable struct; header_len <= its size and
  // the source range was checked above.
  std::memcpy(&image.header, file.data() + kSetupHeaderOffset, header_len);
  const setup_header& hdr = image.header;

  if (hdr.version < kMinBootProtocol) {
    return bad_bzimage("boot protocol " + std::to_string(hdr.version >> 8) + "." +
                       std::to_string(hdr.version & 0xff) +
                       " is too old: 2.12 or newer is needed for the 64-bit entry point");
  }
  if (header_len < kMinHeaderLen) {
    return bad_bzimage("the setup header ends at " + hex(header_end) +
                       ", before the fields of protocol 2.12 (" +
                       hex(kSetupHeaderOffset + kMinHeaderLen) + ")");
  }
  if ((hdr.loadflags & LOADED_HIGH) == 0) {
    return bad_bzimage("the kernel loads at 0x10000 (a zImage, LOADED_HIGH clear); only bzImage is supported");
  }
  if ((hdr.xloadflags & XLF_KERNEL_64) == 0) {
    return bad_bzimage("no 64-bit entry point (XLF_KERNEL_64 clear in xloadflags)");
  }

  const uint64_t setup_sects = hdr.setup_sects == 0 ? 4 : hdr.setup_sects;  // boot.rst: 0 means 4
  image.setup_size = (setup_sects + 1) * 512;
  if (image.setup_size >= size) {
    return bad_bzimage("setup_sects " + std::to_string(hdr.setup_sects) + " puts the kernel at offset " +
                       hex(image.setup_size) + ", at or past the end of the file (" +
                       std::to_string(size) + " bytes)");
  }
  image.payload = file.subspan(image.setup_size);
  // syssize: the protected-mode code in 16-byte paragraphs; a shorter file was cut off.
  if (uint64_t{hdr.syssize} * 16 > image.payload.size()) {
    return bad_bzimage("truncated: syssize says " + std::to_string(uint64_t{hdr.syssize} * 16) +
                       " bytes of protected-mode kernel, the file has " +
                       std::to_string(image.payload.size()));
  }
  if (hdr.init_size == 0) {
    return bad_bzimage("init_size is 0");
  }

  image.load_addr = kKernelMinAddr;
  image.entry64 = image.load_addr + kEntry64Offset;
  if (image.payload.size() <= kEntry64Offset) {
    return bad_bzimage("the protected-mode kernel (" + std::to_string(image.payload.size()) +
                       " bytes) ends before its 64-bit entry point at +0x200");
  }
  // "The kernel runtime start address" (boot.rst, init_size).
  if (hdr.relocatable_kernel != 0) {
    const uint64_t align = hdr.kernel_alignment;
    if (align == 0 || (align & (align - 1)) != 0 || align > (1ull << 30)) {
      return bad_bzimage("kernel_alignment " + hex(align) + " is not a power of two up to 1 GiB");
    }
    const uint64_t start = std::max<uint64_t>(image.load_addr, hdr.pref_address);
    if (start > (1ull << 32)) {
      return bad_bzimage("pref_address " + hex(hdr.pref_address) + " is above 4 GiB");
    }
    image.runtime_start = (start + align - 1) & ~(align - 1);
  } else {
    image.runtime_start = hdr.pref_address != 0 ? hdr.pref_address : image.load_addr;
    if (image.runtime_start < kKernelMinAddr || image.runtime_start > (1ull << 32)) {
      return bad_bzimage("pref_address " + hex(hdr.pref_address) +
                         " of a non-relocatable kernel is outside [1 MiB, 4 GiB]");
    }
  }
  image.runtime_end = image.runtime_start + hdr.init_size;  // both < 2^33: no overflow
  image.footprint_end = std::max(image.load_addr + image.payload.size(), image.runtime_end);
  image.cmdline_max = hdr.cmdline_size;
  image.initrd_limit = uint64_t{hdr.initrd_addr_max} + 1;
  return image;
}

Status load_bzimage(const GuestMemory& mem, const BzImage& image) {
  const uint64_t low_end = low_ram_end(mem.ram_size());
  if (image.footprint_end > low_end) {
    return fail(ENOMEM, "bzImage: the kernel needs RAM up to " + hex(image.footprint_end) +
                            " (loaded at " + hex(image.load_addr) + ", " +
                            human_size(image.payload.size()) + "; runs at " +
                            hex(image.runtime_start) + " with init_size " +
                            human_size(image.runtime_end - image.runtime_start) + ") but the guest has " +
                            human_size(mem.ram_size()) + " of RAM: give the VM more memory");
  }
  return mem.write(image.load_addr, image.payload);
}

Status write_zero_page(const GuestMemory& mem, const BzImage& image, uint64_t cmdline_addr,
                       const std::optional<InitrdPlacement>& initrd,
                       std::span<const E820Entry> memory_map) {
  if (memory_map.size() > E820_MAX_ENTRIES_ZEROPAGE) {
    return fail(EINVAL, "memory map has " + std::to_string(memory_map.size()) +
                            " entries; the zero page holds " + std::to_string(E820_MAX_ENTRIES_ZEROPAGE));
  }
  // Zeroed first: the kernel treats non-zero fields it does not expect from a loader as garbage
  // (boot_params.sentinel, arch/x86/include/asm/bootparam_utils.h).
  boot_params bp{};
  // SAFETY: both sides are the packed setup_header; header_len <= sizeof(setup_header).
  std::memcpy(&bp.hdr, &image.header, image.header_len);

  bp.hdr.type_of_loader = kLoaderTypeUndefined;
  bp.hdr.loadflags = LOADED_HIGH;
  bp.hdr.code32_start = low32(image.load_addr);
  bp.hdr.cmd_line_ptr = low32(cmdline_addr);
  bp.ext_cmd_line_ptr = high32(cmdline_addr);
  bp.hdr.setup_data = 0;
  bp.hdr.hardware_subarch = 0;  // X86_SUBARCH_PC
  bp.hdr.hardware_subarch_data = 0;
  if (initrd.has_value()) {
    bp.hdr.ramdisk_image = low32(initrd->addr);
    bp.ext_ramdisk_image = high32(initrd->addr);
    bp.hdr.ramdisk_size = low32(initrd->size);
    bp.ext_ramdisk_size = high32(initrd->size);
  }
  bp.e820_entries = static_cast<uint8_t>(memory_map.size());
  for (size_t i = 0; i < memory_map.size(); ++i) {
    bp.e820_table[i].addr = memory_map[i].addr;
    bp.e820_table[i].size = memory_map[i].size;
    bp.e820_table[i].type = static_cast<uint32_t>(memory_map[i].type);
  }
  return mem.write_obj(kZeroPageAddr, bp);
}

}  // namespace hcnode::compute::x86
