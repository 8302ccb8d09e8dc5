#include <catch2/catch.hpp>

#include <cstring>
#include <optional>

#include "compute/arch/x86/boot_layout.hpp"
#include "compute/arch/x86/mp_spec.hpp"
#include "compute/arch/x86/mptable.hpp"
#include "tests/fakes/fake_guest_memory.hpp"

using namespace hcnode;
using namespace hcnode::compute::x86;
using hcnode::testing::FakeGuestMemory;

namespace {

uint8_t byte_sum(const uint8_t* p, size_t n) {
  uint8_t s = 0;
  for (size_t i = 0; i < n; ++i) {
    s = static_cast<uint8_t>(s + p[i]);
  }
  return s;
}

// The search Linux does (arch/x86/kernel/mpparse.c, smp_scan_config): 16-byte steps through
// the first KiB, the last KiB below 640 KiB and the BIOS area 0xf0000-0xfffff, accepting a
// "_MP_" structure with length 1, spec rev 1 or 4 and a zero byte sum.
std::optional<uint64_t> scan_like_linux(FakeGuestMemory& mem) {
  const std::pair<uint64_t, uint64_t> areas[] = {{0x0, 0x400}, {639 * 0x400, 0x400}, {0xf0000, 0x10000}};
  for (const auto& [base, len] : areas) {
    for (uint64_t a = base; a + 16 <= base + len; a += 16) {
      const uint8_t* p = mem.host(a);
      if (std::memcmp(p, "_MP_", 4) == 0 && p[8] == 1 && (p[9] == 1 || p[9] == 4) && byte_sum(p, 16) == 0) {
        return a;
      }
    }
  }
  return std::nullopt;
}

struct ParsedTable {
  mp::ConfigHeader header;
  std::vector<mp::ProcessorEntry> cpus;
  std::vector<mp::BusEntry> buses;
  std::vector<mp::IoApicEntry> ioapics;
  std::vector<mp::InterruptEntry> io_ints;
  std::vector<mp::InterruptEntry> local_ints;
};

ParsedTable parse(FakeGuestMemory& mem, uint64_t table_addr) {
  ParsedTable t{};
  t.header = mem.read_obj<mp::ConfigHeader>(table_addr).value();
  REQUIRE(std::memcmp(t.header.signature, "PCMP", 4) == 0);
  REQUIRE(byte_sum(mem.host(table_addr), t.header.base_length) == 0);
  uint64_t a = table_addr + sizeof(mp::ConfigHeader);
  uint8_t last_type = 0;
  for (uint16_t i = 0; i < t.header.entry_count; ++i) {
    const uint8_t type = *mem.host(a);
    REQUIRE(type >= last_type);  // base entries are sorted by type (MPS §4.3)
    last_type = type;
    switch (type) {
      case mp::kEntryProcessor:
        t.cpus.push_back(mem.read_obj<mp::ProcessorEntry>(a).value());
        a += sizeof(mp::ProcessorEntry);
        break;
      case mp::kEntryBus:
        t.buses.push_back(mem.read_obj<mp::BusEntry>(a).value());
        a += 8;
        break;
      case mp::kEntryIoApic:
        t.ioapics.push_back(mem.read_obj<mp::IoApicEntry>(a).value());
        a += 8;
        break;
      case mp::kEntryIoInterrupt:
        t.io_ints.push_back(mem.read_obj<mp::InterruptEntry>(a).value());
        a += 8;
        break;
      case mp::kEntryLocalInterrupt:
        t.local_ints.push_back(mem.read_obj<mp::InterruptEntry>(a).value());
        a += 8;
        break;
      default:
        FAIL("unknown MP entry type " << int{type});
    }
  }
  CHECK(a == table_addr + t.header.base_length);
  return t;
}

}  // namespace

TEST_CASE("x86 MP table is found where Linux looks and lists every vCPU", "[x86][mptable]") {
  const uint32_t vcpus = GENERATE(1u, 2u, 64u, kMaxMpVcpus);
  FakeGuestMemory mem(2 << 20);
  auto info = write_mp_table(mem, vcpus);
  REQUIRE(info.has_value());
  CHECK(info->ioapic_id == vcpus);

  const auto fp_addr = scan_like_linux(mem);
  REQUIRE(fp_addr.has_value());
  CHECK(*fp_addr == kMpTableAddr);
  const auto fp = mem.read_obj<mp::FloatingPointer>(*fp_addr).value();
  CHECK(fp.spec_rev == 4);
  CHECK(fp.feature1 == 0);  // a configuration table follows; not a default configuration
  CHECK(fp.feature2 == 0);  // virtual wire mode, no IMCR
  CHECK(fp.config_paddr == info->config_table_addr);

  const ParsedTable t = parse(mem, fp.config_paddr);
  CHECK(t.header.spec_rev == 4);
  CHECK(t.header.lapic_paddr == 0xfee00000);
  CHECK(t.header.ext_length == 0);
  CHECK(t.header.ext_checksum == 0);
  CHECK(info->size == sizeof(mp::FloatingPointer) + t.header.base_length);

  REQUIRE(t.cpus.size() == vcpus);
  for (uint32_t i = 0; i < vcpus; ++i) {
    CHECK(t.cpus[i].lapic_id == i);
    CHECK((t.cpus[i].cpu_flags & mp::kCpuEnabled) != 0);
    CHECK(((t.cpus[i].cpu_flags & mp::kCpuBootProcessor) != 0) == (i == 0));
    CHECK(t.cpus[i].lapic_version == 0x14);
  }
  REQUIRE(t.buses.size() == 2);
  CHECK(std::memcmp(t.buses[0].bus_type, "PCI   ", 6) == 0);
  CHECK(std::memcmp(t.buses[1].bus_type, "ISA   ", 6) == 0);
  REQUIRE(t.ioapics.size() == 1);
  CHECK(t.ioapics[0].ioapic_id == vcpus);
  CHECK(t.ioapics[0].ioapic_version == 0x11);
  CHECK(t.ioapics[0].flags == mp::kIoApicEnabled);
  CHECK(t.ioapics[0].ioapic_paddr == 0xfec00000);
  REQUIRE(t.io_ints.size() == 16);
  for (uint8_t irq = 0; irq < 16; ++irq) {
    CHECK(t.io_ints[irq].interrupt_type == mp::kIntInt);
    CHECK(t.io_ints[irq].source_bus_id == t.buses[1].bus_id);
    CHECK(t.io_ints[irq].source_bus_irq == irq);
    CHECK(t.io_ints[irq].dest_id == vcpus);
    CHECK(t.io_ints[irq].dest_pin == irq);
    CHECK(t.io_ints[irq].flags == 0);
  }
  REQUIRE(t.local_ints.size() == 2);
  CHECK(t.local_ints[0].interrupt_type == mp::kIntExtInt);
  CHECK(t.local_ints[0].dest_id == 0xff);
  CHECK(t.local_ints[0].dest_pin == 0);
  CHECK(t.local_ints[1].interrupt_type == mp::kIntNmi);
  CHECK(t.local_ints[1].dest_id == 0xff);
  CHECK(t.local_ints[1].dest_pin == 1);
  // The whole table stays inside the BIOS area the e820 map reserves.
  CHECK(kMpTableAddr + info->size <= kMpTableAddr + kMpTableAreaSize);
}

TEST_CASE("x86 MP table refuses 0 or more than 254 vCPUs", "[x86][mptable]") {
  FakeGuestMemory mem(2 << 20);
  CHECK(write_mp_table(mem, 0).error().code() == EINVAL);
  CHECK(write_mp_table(mem, 255).error().code() == EINVAL);
  CHECK(write_mp_table(mem, 1000).error().code() == EINVAL);
  CHECK(build_mp_table(4, 0xf0008).error().code() == EINVAL);  // not 16-byte aligned
}

TEST_CASE("x86 MP table at the last KiB of base memory is found too", "[x86][mptable]") {
  FakeGuestMemory mem(2 << 20);
  REQUIRE(write_mp_table(mem, 2, 0x9fc00).has_value());
  CHECK(scan_like_linux(mem) == std::optional<uint64_t>(0x9fc00));
}
