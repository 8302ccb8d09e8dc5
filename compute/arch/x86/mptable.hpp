// MP table (Intel MultiProcessor Specification 1.4): how a guest without ACPI learns its CPUs,
// its I/O APIC and how ISA interrupts reach it. Linux needs it to bring up more than one vCPU
// when booted with acpi=off (or when there are no ACPI tables): every vCPU must be listed.
//
// What the table says:
//   - one processor entry per vCPU, local APIC id = vCPU index (KVM's APIC id for the vCPU id
//     it was created with), enabled, the boot-processor flag on vCPU 0 only;
//   - bus 0 "PCI", bus 1 "ISA";
//   - one I/O APIC, id = vcpus (the first id after the CPUs), version 0x11 (KVM's in-kernel
//     IOAPIC), at 0xfec00000;
//   - ISA IRQ n -> I/O APIC pin n for n = 0..15, polarity and trigger as the bus defines
//     (KVM's default GSI routing sends GSI n to IOAPIC pin n, and its PIT raises GSI 0);
//   - ExtINT on LINT0 and NMI on LINT1 of every local APIC.
// PCI INTx is not listed: hcnode's PCI devices use MSI-X.
//
// The floating pointer and the table are contiguous at `addr`, which must be 16-byte aligned
// and inside an area Linux scans (arch/x86/kernel/mpparse.c): kMpTableAddr (0xf0000).
#pragma once

#include <cstdint>
#include <vector>

#include "base/result.hpp"
#include "compute/arch/x86/boot_layout.hpp"
#include "compute/memory/guest_memory.hpp"

namespace hcnode::compute::x86 {

// xAPIC ids are 8-bit and 0xff is the broadcast id; the I/O APIC takes the id after the CPUs.
inline constexpr uint32_t kMaxMpVcpus = 254;
inline constexpr uint32_t kLocalApicAddr = 0xfee00000;
inline constexpr uint32_t kIoApicAddr = 0xfec00000;
inline constexpr uint8_t kLocalApicVersion = 0x14;  // KVM's in-kernel local APIC
inline constexpr uint8_t kIoApicVersion = 0x11;     // KVM's in-kernel I/O APIC (24 pins)
inline constexpr uint8_t kMpPciBusId = 0;
inline constexpr uint8_t kMpIsaBusId = 1;
inline constexpr uint32_t kMpIsaIrqs = 16;

struct MpTableInfo {
  uint64_t floating_pointer_addr;
  uint64_t config_table_addr;
  uint64_t size;       // floating pointer + configuration table, bytes
  uint8_t ioapic_id;
};

// The bytes of the floating pointer followed by the configuration table, for placement at addr.
// EINVAL for 0 or more than kMaxMpVcpus vCPUs, or an addr that is not 16-byte aligned / not
// below 4 GiB.
Result<std::vector<uint8_t>> build_mp_table(uint32_t vcpus, uint64_t addr = kMpTableAddr);

// build_mp_table, written into guest memory at addr.
Result<MpTableInfo> write_mp_table(const GuestMemory& mem, uint32_t vcpus, uint64_t addr = kMpTableAddr);

}  // namespace hcnode::compute::x86
