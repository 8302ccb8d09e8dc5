// bzImage loader for the Linux x86 boot protocol, entered through its 64-bit entry point.
//
// Spec: Linux Documentation/x86/boot.rst ("THE LINUX/x86 BOOT PROTOCOL": "THE REAL-MODE KERNEL
// HEADER", "DETAILS OF HEADER FIELDS", "LOADING THE REST OF THE KERNEL", "64-bit BOOT
// PROTOCOL"). The VMM plays the boot loader: it skips the real-mode setup code entirely, copies
// the protected-mode kernel (the file after the setup sectors) to 1 MiB, fills the zero page
// (struct boot_params) itself and enters at load address + 0x200 in long mode.
//
// Requirements on the file: boot_flag 0xAA55, "HdrS", protocol >= 2.12, LOADED_HIGH (a bzImage,
// not a zImage) and XLF_KERNEL_64 (it has a 64-bit entry point). Every field that becomes an
// address or a size is checked; a truncated or hostile file gives ENOEXEC with a precise
// message, a kernel too big for the guest gives ENOMEM.
#pragma once

#include <asm/bootparam.h>

#include <cstdint>
#include <optional>
#include <span>

#include "base/result.hpp"
#include "compute/arch/x86/initrd.hpp"
#include "compute/arch/x86/memory_map.hpp"
#include "compute/memory/guest_memory.hpp"

namespace hcnode::compute::x86 {

// Boot protocol 2.12 (Linux 3.8): xloadflags with XLF_KERNEL_64, i.e. the 64-bit entry point.
inline constexpr uint16_t kMinBootProtocol = 0x020c;
// Offsets in the file (boot.rst, "THE REAL-MODE KERNEL HEADER").
inline constexpr uint64_t kSetupHeaderOffset = 0x1f1;
inline constexpr uint16_t kBootFlag = 0xaa55;      // at 0x1fe
inline constexpr uint32_t kHdrSMagic = 0x53726448;  // "HdrS" at 0x202
// The 64-bit entry point is 0x200 bytes into the protected-mode kernel (boot.rst, "64-bit BOOT
// PROTOCOL": "the kernel is loaded ... and jump to ... the start address of loaded 64-bit
// kernel plus 0x200").
inline constexpr uint64_t kEntry64Offset = 0x200;
// type_of_loader: 0xFF = "undefined" (no assigned boot loader ID).
inline constexpr uint8_t kLoaderTypeUndefined = 0xff;

struct BzImage {
  setup_header header{};           // the file's setup header (fields past its end are zero)
  uint64_t header_len = 0;         // bytes of setup_header the file defines (0x202 + byte 0x201)
  uint64_t setup_size = 0;         // real-mode part: (setup_sects + 1) * 512, setup_sects 0 = 4
  std::span<const uint8_t> payload;  // the protected-mode kernel; aliases the file
  uint64_t load_addr = 0;          // where the payload goes
  uint64_t entry64 = 0;            // load_addr + 0x200
  // The kernel decompresses itself into [runtime_start, runtime_end) = init_size bytes from
  // the "kernel runtime start address" (boot.rst, init_size); both must be RAM.
  uint64_t runtime_start = 0;
  uint64_t runtime_end = 0;
  uint64_t footprint_end = 0;      // max(load_addr + payload size, runtime_end): initrd floor
  uint64_t cmdline_max = 0;        // cmdline_size: longest command line without its NUL
  uint64_t initrd_limit = 0;       // initrd_addr_max + 1: the initrd must end at or below it
};

// Validates the header and computes where everything goes; does not touch guest memory.
// The payload is loaded at 1 MiB, the boot protocol's default protected-mode address (what
// QEMU and other loaders use); the runtime area follows the protocol's algorithm (pref_address
// for a non-relocatable kernel, aligned load address for a relocatable one).
Result<BzImage> parse_bzimage(std::span<const uint8_t> file);

// Checks that the payload and the runtime area are guest RAM below the MMIO hole (ENOMEM
// otherwise), then copies the payload to load_addr.
Status load_bzimage(const GuestMemory& mem, const BzImage& image);

// The zero page: zeroed struct boot_params, the file's setup header copied in (boot.rst:
// "copy ... the setup header ... into boot_params"), then the loader's fields: type_of_loader,
// loadflags (LOADED_HIGH only; no heap, the real-mode setup never runs), code32_start,
// cmd_line_ptr, ramdisk_image/ramdisk_size (+ ext_ halves), e820_table. Written at kZeroPageAddr;
// its address goes into %rsi.
Status write_zero_page(const GuestMemory& mem, const BzImage& image, uint64_t cmdline_addr,
                       const std::optional<InitrdPlacement>& initrd,
                       std::span<const E820Entry> memory_map);

}  // namespace hcnode::compute::x86
