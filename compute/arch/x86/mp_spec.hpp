// Intel MultiProcessor Specification 1.4 (May 1997) structures: the MP floating pointer
// structure (§4.1) and the MP configuration table with its base entries (§4.2, §4.3). All
// little-endian; the layouts are naturally aligned, and the static_asserts pin the sizes the
// spec gives.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hcnode::compute::x86::mp {

// §4.1, Table 4-1: 16 bytes, 16-byte aligned, where the OS scans for it.
struct FloatingPointer {
  char signature[4];       // "_MP_"
  uint32_t config_paddr;   // physical address of the configuration table
  uint8_t length;          // in 16-byte paragraphs: 1
  uint8_t spec_rev;        // 4 = version 1.4
  uint8_t checksum;        // all 16 bytes sum to 0
  uint8_t feature1;        // 0: a configuration table is present (no default configuration)
  uint8_t feature2;        // bit 7 IMCRP: 0 = virtual wire mode (no IMCR)
  uint8_t feature3_5[3];   // reserved, 0
};
static_assert(sizeof(FloatingPointer) == 16);

// §4.2, Table 4-2: the configuration table header, followed by entry_count entries.
struct ConfigHeader {
  char signature[4];       // "PCMP"
  uint16_t base_length;    // header + base entries, bytes
  uint8_t spec_rev;        // 4
  uint8_t checksum;        // base_length bytes sum to 0
  char oem_id[8];          // space padded
  char product_id[12];     // space padded
  uint32_t oem_table_paddr;
  uint16_t oem_table_size;
  uint16_t entry_count;
  uint32_t lapic_paddr;    // memory-mapped local APIC address
  uint16_t ext_length;     // extended entries after the base table
  uint8_t ext_checksum;    // extended entries (+ this byte) sum to 0
  uint8_t reserved;
};
static_assert(sizeof(ConfigHeader) == 44);
static_assert(offsetof(ConfigHeader, entry_count) == 34);
static_assert(offsetof(ConfigHeader, lapic_paddr) == 36);

// Entry types (§4.3, Table 4-3): the base entries come sorted by type.
inline constexpr uint8_t kEntryProcessor = 0;
inline constexpr uint8_t kEntryBus = 1;
inline constexpr uint8_t kEntryIoApic = 2;
inline constexpr uint8_t kEntryIoInterrupt = 3;
inline constexpr uint8_t kEntryLocalInterrupt = 4;

// §4.3.1, Table 4-4.
struct ProcessorEntry {
  uint8_t type;            // kEntryProcessor
  uint8_t lapic_id;
  uint8_t lapic_version;
  uint8_t cpu_flags;       // kCpuEnabled | kCpuBootProcessor
  uint32_t cpu_signature;  // CPUID.1:EAX stepping/model/family
  uint32_t feature_flags;  // CPUID.1:EDX
  uint32_t reserved[2];
};
static_assert(sizeof(ProcessorEntry) == 20);
inline constexpr uint8_t kCpuEnabled = 1 << 0;
inline constexpr uint8_t kCpuBootProcessor = 1 << 1;

// §4.3.2, Table 4-6.
struct BusEntry {
  uint8_t type;            // kEntryBus
  uint8_t bus_id;
  char bus_type[6];        // "PCI   ", "ISA   " (Table 4-8, space padded)
};
static_assert(sizeof(BusEntry) == 8);

// §4.3.3, Table 4-9.
struct IoApicEntry {
  uint8_t type;            // kEntryIoApic
  uint8_t ioapic_id;
  uint8_t ioapic_version;
  uint8_t flags;           // bit 0 EN
  uint32_t ioapic_paddr;
};
static_assert(sizeof(IoApicEntry) == 8);
inline constexpr uint8_t kIoApicEnabled = 1 << 0;

// §4.3.4 (I/O interrupt assignment, Table 4-10) and §4.3.5 (local interrupt assignment,
// Table 4-12) share one layout.
struct InterruptEntry {
  uint8_t type;            // kEntryIoInterrupt or kEntryLocalInterrupt
  uint8_t interrupt_type;  // kIntInt, kIntNmi, kIntSmi, kIntExtInt
  uint16_t flags;          // polarity bits 1:0, trigger mode bits 3:2; 0 = conforms to the bus
  uint8_t source_bus_id;
  uint8_t source_bus_irq;
  uint8_t dest_id;         // I/O APIC id, or local APIC id (0xff = all)
  uint8_t dest_pin;        // I/O APIC INTIN#, or local APIC LINTIN#
};
static_assert(sizeof(InterruptEntry) == 8);
inline constexpr uint8_t kIntInt = 0;     // vectored interrupt (from the APIC redirection entry)
inline constexpr uint8_t kIntNmi = 1;
inline constexpr uint8_t kIntSmi = 2;
inline constexpr uint8_t kIntExtInt = 3;  // 8259A-compatible interrupt
inline constexpr uint16_t kIntConforms = 0;
inline constexpr uint8_t kAllLocalApics = 0xff;

}  // namespace hcnode::compute::x86::mp
