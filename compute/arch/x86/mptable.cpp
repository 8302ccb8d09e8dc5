#include "compute/arch/x86/mptable.hpp"

#include <cstring>
#include <string>
#include <type_traits>

#include "compute/arch/x86/hex.hpp"
#include "compute/arch/x86/mp_spec.hpp"

namespace hcnode::compute::x86 {
namespace {

// CPU signature and features shown in the processor entries. Linux only prints them (it reads
// the real values from CPUID); they say "family 6, with an FPU and a local APIC" (CPUID.1:EDX
// bit 0 FPU, bit 9 APIC), which every CPU KVM offers is.
constexpr uint32_t kCpuSignature = 6u << 8;
constexpr uint32_t kCpuFeatures = (1u << 0) | (1u << 9);

template <typename T>
void append(std::vector<uint8_t>& out, const T& value) {
  static_assert(std::is_trivially_copyable_v<T>);
  // SAFETY: T is a padding-free MPS structure (static_asserts in mp_spec.hpp).
  const auto* bytes = reinterpret_cast<const uint8_t*>(&value);
  out.insert(out.end(), bytes, bytes + sizeof(T));
}

// The value that makes the bytes sum to 0 (mod 256) when stored in their checksum field (MPS
// §4.1 and §4.2: "the sum of all bytes ... must add up to zero").
uint8_t checksum(const uint8_t* data, size_t len) {
  uint8_t sum = 0;
  for (size_t i = 0; i < len; ++i) {
    sum = static_cast<uint8_t>(sum + data[i]);
  }
  return static_cast<uint8_t>(-sum);
}

mp::InterruptEntry interrupt(uint8_t type, uint8_t int_type, uint8_t bus, uint8_t irq, uint8_t dest_id,
                             uint8_t dest_pin) {
  return mp::InterruptEntry{type, int_type, mp::kIntConforms, bus, irq, dest_id, dest_pin};
}

}  // namespace

Result<std::vector<uint8_t>> build_mp_table(uint32_t vcpus, uint64_t addr) {
  if (vcpus == 0 || vcpus > kMaxMpVcpus) {
    return fail(EINVAL, "MP table: " + std::to_string(vcpus) + " vCPUs; between 1 and " +
                            std::to_string(kMaxMpVcpus) + " are supported (8-bit xAPIC ids)");
  }
  if (addr % 16 != 0 || addr > UINT32_MAX - kMpTableAreaSize) {
    return fail(EINVAL, "MP table address " + hex(addr) + " is not 16-byte aligned below 4 GiB");
  }
  const auto ioapic_id = static_cast<uint8_t>(vcpus);

  std::vector<uint8_t> body;  // the base entries, sorted by type (MPS §4.3)
  uint16_t entries = 0;
  for (uint32_t cpu = 0; cpu < vcpus; ++cpu) {
    mp::ProcessorEntry p{};
    p.type = mp::kEntryProcessor;
    p.lapic_id = static_cast<uint8_t>(cpu);
    p.lapic_version = kLocalApicVersion;
    p.cpu_flags = mp::kCpuEnabled | (cpu == 0 ? mp::kCpuBootProcessor : 0);
    p.cpu_signature = kCpuSignature;
    p.feature_flags = kCpuFeatures;
    append(body, p);
    ++entries;
  }
  append(body, mp::BusEntry{mp::kEntryBus, kMpPciBusId, {'P', 'C', 'I', ' ', ' ', ' '}});
  append(body, mp::BusEntry{mp::kEntryBus, kMpIsaBusId, {'I', 'S', 'A', ' ', ' ', ' '}});
  entries += 2;
  append(body, mp::IoApicEntry{mp::kEntryIoApic, ioapic_id, kIoApicVersion, mp::kIoApicEnabled, kIoApicAddr});
  ++entries;
  for (uint8_t irq = 0; irq < kMpIsaIrqs; ++irq) {
    append(body, interrupt(mp::kEntryIoInterrupt, mp::kIntInt, kMpIsaBusId, irq, ioapic_id, irq));
    ++entries;
  }
  // Virtual wire mode (MPS §3.6.2.2): the 8259A reaches every local APIC on LINT0, NMI on LINT1.
  append(body, interrupt(mp::kEntryLocalInterrupt, mp::kIntExtInt, kMpIsaBusId, 0, mp::kAllLocalApics, 0));
  append(body, interrupt(mp::kEntryLocalInterrupt, mp::kIntNmi, kMpIsaBusId, 0, mp::kAllLocalApics, 1));
  entries += 2;

  mp::ConfigHeader header{};
  std::memcpy(header.signature, "PCMP", 4);
  header.base_length = static_cast<uint16_t>(sizeof(header) + body.size());
  header.spec_rev = 4;
  std::memcpy(header.oem_id, "HCNODE  ", 8);
  std::memcpy(header.product_id, "hcnode-vmm  ", 12);
  header.entry_count = entries;
  header.lapic_paddr = kLocalApicAddr;
  std::vector<uint8_t> table;
  append(table, header);
  table.insert(table.end(), body.begin(), body.end());
  table[offsetof(mp::ConfigHeader, checksum)] = checksum(table.data(), table.size());
  static_assert(sizeof(mp::FloatingPointer) + sizeof(mp::ConfigHeader) +
                    kMaxMpVcpus * sizeof(mp::ProcessorEntry) + 2 * sizeof(mp::BusEntry) +
                    sizeof(mp::IoApicEntry) + (kMpIsaIrqs + 2) * sizeof(mp::InterruptEntry) <=
                kMpTableAreaSize);

  mp::FloatingPointer fp{};
  std::memcpy(fp.signature, "_MP_", 4);
  fp.config_paddr = static_cast<uint32_t>(addr + sizeof(mp::FloatingPointer));
  fp.length = 1;
  fp.spec_rev = 4;
  std::vector<uint8_t> out;
  out.reserve(sizeof(fp) + table.size());
  append(out, fp);
  out[offsetof(mp::FloatingPointer, checksum)] = checksum(out.data(), out.size());
  out.insert(out.end(), table.begin(), table.end());
  return out;
}

Result<MpTableInfo> write_mp_table(const GuestMemory& mem, uint32_t vcpus, uint64_t addr) {
  const std::vector<uint8_t> bytes = HCN_TRY(build_mp_table(vcpus, addr));
  HCN_TRY_STATUS(mem.write(addr, bytes));
  return MpTableInfo{addr, addr + sizeof(mp::FloatingPointer), bytes.size(), static_cast<uint8_t>(vcpus)};
}

}  // namespace hcnode::compute::x86
