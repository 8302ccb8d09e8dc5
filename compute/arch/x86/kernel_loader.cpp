#include "compute/arch/x86/kernel_loader.hpp"

#include <algorithm>
#include <cstring>

#include "compute/arch/x86/boot_layout.hpp"
#include "compute/arch/x86/bzimage.hpp"
#include "compute/arch/x86/cmdline.hpp"
#include "compute/arch/x86/elf_loader.hpp"
#include "compute/arch/x86/pvh.hpp"

namespace hcnode::compute::x86 {
namespace {

uint64_t page_align_up(uint64_t v) { return (v + 4095) & ~uint64_t{4095}; }

// The PVH path: ELF segments, initrd as module 0, start_info, 32-bit entry.
Status load_pvh(const GuestMemory& mem, std::span<const uint8_t> kernel, std::span<const uint8_t> initrd,
                std::string_view cmdline, BootSetup& setup) {
  // The note is checked before anything is copied into guest RAM.
  const ElfKernel inspected = HCN_TRY(inspect_elf_kernel(kernel));
  if (!inspected.pvh_entry.has_value()) {
    return fail(ENOEXEC,
                "kernel ELF: no Xen PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY) — only PVH ELF kernels are "
                "supported (Linux needs CONFIG_PVH=y; or boot its bzImage)");
  }
  const ElfKernel elf = HCN_TRY(load_elf_kernel(mem, kernel));
  for (const ElfSegment& s : elf.segments) {
    setup.kernel_ranges.push_back(GuestRange{s.paddr, s.mem_size});
  }
  setup.kernel_end = elf.end_addr;
  if (!initrd.empty()) {
    setup.initrd = HCN_TRY(load_initrd(mem, initrd, page_align_up(elf.end_addr), 1ull << 32));
  }
  HCN_TRY_STATUS(write_cmdline(mem, kCmdlineAddr, cmdline, kCmdlineAreaSize - 1));
  setup.boot_info_addr = HCN_TRY(write_pvh_start_info(mem, kCmdlineAddr, setup.initrd, setup.memory_map));
  setup.bsp = HCN_TRY(setup_pvh_boot_cpu(mem, *elf.pvh_entry, static_cast<uint32_t>(setup.boot_info_addr)));
  return {};
}

// The Linux 64-bit boot protocol: payload at 1 MiB, zero page, identity map, 64-bit entry.
Status load_bzimage_kernel(const GuestMemory& mem, std::span<const uint8_t> kernel,
                           std::span<const uint8_t> initrd, std::string_view cmdline, BootSetup& setup) {
  const BzImage image = HCN_TRY(parse_bzimage(kernel));
  HCN_TRY_STATUS(load_bzimage(mem, image));
  setup.kernel_ranges.push_back(GuestRange{image.load_addr, image.payload.size()});
  setup.kernel_end = image.footprint_end;
  if (!initrd.empty()) {
    setup.initrd = HCN_TRY(load_initrd(mem, initrd, page_align_up(image.footprint_end),
                                       std::min<uint64_t>(image.initrd_limit, 1ull << 32)));
  }
  const uint64_t cmdline_max = std::min<uint64_t>(image.cmdline_max, kCmdlineAreaSize - 1);
  HCN_TRY_STATUS(write_cmdline(mem, kCmdlineAddr, cmdline, cmdline_max));
  HCN_TRY_STATUS(write_zero_page(mem, image, kCmdlineAddr, setup.initrd, setup.memory_map));
  setup.boot_info_addr = kZeroPageAddr;
  setup.bsp = HCN_TRY(setup_linux64_boot_cpu(mem, image.entry64, kZeroPageAddr));
  return {};
}

}  // namespace

std::string_view kernel_format_name(KernelFormat format) {
  switch (format) {
    case KernelFormat::kPvhElf:
      return "PVH ELF";
    case KernelFormat::kBzImage:
      return "bzImage";
  }
  return "unknown";
}

Result<KernelFormat> detect_kernel_format(std::span<const uint8_t> kernel) {
  if (kernel.size() >= 4 && std::memcmp(kernel.data(), "\x7f" "ELF", 4) == 0) {
    return KernelFormat::kPvhElf;
  }
  if (kernel.size() >= 0x206 && kernel[0x1fe] == 0x55 && kernel[0x1ff] == 0xaa &&
      std::memcmp(kernel.data() + 0x202, "HdrS", 4) == 0) {
    return KernelFormat::kBzImage;
  }
  return fail(ENOEXEC, "kernel image is not a bzImage or ELF kernel (no \\x7fELF magic, no boot "
                       "sector with a \"HdrS\" header); compressed or EFI-only images are not supported");
}

Result<BootSetup> load_kernel(const GuestMemory& mem, std::span<const uint8_t> kernel,
                              std::span<const uint8_t> initrd, std::string_view cmdline, uint32_t vcpus) {
  BootSetup setup;
  // Cheap checks first, so a bad vCPU count or RAM size fails before any copying.
  setup.memory_map = HCN_TRY(build_memory_map(mem.ram_size()));
  HCN_TRY(build_mp_table(vcpus));
  setup.format = HCN_TRY(detect_kernel_format(kernel));
  if (setup.format == KernelFormat::kPvhElf) {
    HCN_TRY_STATUS(load_pvh(mem, kernel, initrd, cmdline, setup));
  } else {
    HCN_TRY_STATUS(load_bzimage_kernel(mem, kernel, initrd, cmdline, setup));
  }
  setup.entry = setup.bsp.regs.rip;
  setup.cmdline_addr = kCmdlineAddr;
  setup.cmdline_len = cmdline.size();
  setup.mp_table = HCN_TRY(write_mp_table(mem, vcpus));
  return setup;
}

}  // namespace hcnode::compute::x86
