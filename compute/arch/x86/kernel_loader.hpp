// load_kernel: everything the VMM does to a fresh guest before its first KVM_RUN on x86.
//
// It detects the kernel's format and takes the matching boot path:
//   ELF with a Xen PVH note (the probe guest, a Linux vmlinux) -> PVH: segments at their
//     physical addresses, hvm_start_info with memmap, initrd as module 0, 32-bit entry;
//   bzImage (0xAA55 + "HdrS")                                   -> Linux 64-bit boot protocol:
//     protected-mode kernel at 1 MiB, zero page with e820, identity page tables, 64-bit entry.
// In both it writes the command line, places the initrd as high as possible below 3 GiB, writes
// the MP table listing every vCPU, and returns the bootstrap processor's register state.
//
// Application processors need nothing here: with KVM's in-kernel irqchip every vCPU but the
// boot one (vCPU id 0) starts in KVM_MP_STATE_UNINITIALIZED, waiting for INIT/SIPI from the BSP;
// the MP table tells the guest their APIC ids.
//
// Pure: no ioctls and no fds; all writes go through GuestMemory. Every piece (elf_loader,
// bzimage, pvh, initrd, mptable, boot_cpu_state) is usable on its own.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "compute/arch/x86/boot_cpu_state.hpp"
#include "compute/arch/x86/initrd.hpp"
#include "compute/arch/x86/memory_map.hpp"
#include "compute/arch/x86/mptable.hpp"
#include "compute/memory/guest_memory.hpp"

namespace hcnode::compute::x86 {

enum class KernelFormat {
  kPvhElf,   // ELF64 with XEN_ELFNOTE_PHYS32_ENTRY
  kBzImage,  // Linux boot protocol >= 2.12
};

std::string_view kernel_format_name(KernelFormat format);

// By magic only: ELF ("\x7fELF") or bzImage (0xAA55 at 0x1fe and "HdrS" at 0x202). ENOEXEC
// otherwise (a compressed vmlinuz, a PE file without a boot header, garbage).
Result<KernelFormat> detect_kernel_format(std::span<const uint8_t> kernel);

struct BootSetup {
  KernelFormat format;
  BootCpuState bsp;                      // KVM_SET_REGS + apply_to_sregs on vCPU 0
  uint64_t entry = 0;                    // = bsp.regs.rip
  uint64_t boot_info_addr = 0;           // hvm_start_info (in EBX) or zero page (in RSI)
  std::vector<GuestRange> kernel_ranges; // guest memory the kernel file was copied into
  uint64_t kernel_end = 0;               // end of what the kernel occupies while it boots
  std::optional<InitrdPlacement> initrd;
  uint64_t cmdline_addr = 0;
  uint64_t cmdline_len = 0;              // without the NUL
  MpTableInfo mp_table{};
  std::vector<E820Entry> memory_map;
};

// Loads `kernel` (and `initrd`, when not empty) into mem for a guest with `vcpus` vCPUs.
// Errors: ENOEXEC (not a supported kernel; the message names the failed check), ENOMEM (kernel
// or initrd do not fit this guest's RAM), E2BIG (command line too long for the kernel), EINVAL
// (vCPU count outside 1..254, RAM below 2 MiB).
Result<BootSetup> load_kernel(const GuestMemory& mem, std::span<const uint8_t> kernel,
                              std::span<const uint8_t> initrd, std::string_view cmdline, uint32_t vcpus);

}  // namespace hcnode::compute::x86
