#include "compute/vcpu/cpu_setup.hpp"

#include <algorithm>

#include <catch2/catch.hpp>

using namespace hcnode::compute;

namespace {

kvm_cpuid_entry2 leaf(uint32_t function, uint32_t index = 0) {
  kvm_cpuid_entry2 e{};
  e.function = function;
  e.index = index;
  return e;
}

const kvm_cpuid_entry2& find(const std::vector<kvm_cpuid_entry2>& v, uint32_t function, uint32_t index = 0) {
  auto it = std::find_if(v.begin(), v.end(), [&](const auto& e) { return e.function == function && e.index == index; });
  REQUIRE(it != v.end());
  return *it;
}

std::vector<kvm_cpuid_entry2> host_like() {
  auto l1 = leaf(1);
  l1.ebx = 0x0A0B0C0D;  // junk APIC id / count from the host
  l1.edx = 1u << 28;
  auto l4 = leaf(4);
  l4.eax = 0xFC004121;
  auto la = leaf(0xA);
  la.eax = 0x07300805;
  auto kvm_sig = leaf(0x40000000);
  kvm_sig.eax = 0x40000001;
  auto kvm_features = leaf(0x40000001);
  kvm_features.eax = 0xFFFF;
  return {leaf(0), l1, l4, la, leaf(0xB, 0), leaf(0xB, 1), leaf(0xB, 2), kvm_sig, kvm_features};
}

}  // namespace

TEST_CASE("cpuid: leaf 1 carries this vCPU's APIC id, the count and the hypervisor bit",
          "[compute][cpuid]") {
  auto out = filter_cpuid(host_like(), CpuidOptions{.vcpu_index = 3, .vcpu_count = 4});
  const auto& l1 = find(out, 1);
  CHECK((l1.ebx >> 24) == 3);
  CHECK(((l1.ebx >> 16) & 0xFF) == 4);
  CHECK((l1.ebx & 0xFFFF) == 0x0C0D);  // brand/CLFLUSH fields untouched
  CHECK((l1.ecx & (1u << 31)) != 0);
  CHECK((l1.edx & (1u << 28)) != 0);
  auto single = filter_cpuid(host_like(), CpuidOptions{.vcpu_index = 0, .vcpu_count = 1});
  CHECK((find(single, 1).edx & (1u << 28)) == 0);
}

TEST_CASE("cpuid: extended topology leaf 0xB describes count cores of one thread",
          "[compute][cpuid]") {
  auto out = filter_cpuid(host_like(), CpuidOptions{.vcpu_index = 5, .vcpu_count = 6});
  const auto& smt = find(out, 0xB, 0);
  const auto& core = find(out, 0xB, 1);
  const auto& invalid = find(out, 0xB, 2);
  CHECK(smt.ebx == 1);
  CHECK(smt.eax == 0);
  CHECK(((smt.ecx >> 8) & 0xFF) == 1);
  CHECK(core.ebx == 6);
  CHECK(core.eax == 3);  // 2^3 >= 6
  CHECK(((core.ecx >> 8) & 0xFF) == 2);
  CHECK(smt.edx == 5);
  CHECK(core.edx == 5);
  CHECK(((invalid.ecx >> 8) & 0xFF) == 0);
  CHECK(((find(out, 4).eax >> 26) & 0x3F) == 5);
}

TEST_CASE("cpuid: PMU leaf zeroed, hypercall PV features hidden when the host cannot serve them",
          "[compute][cpuid]") {
  auto with = filter_cpuid(host_like(), CpuidOptions{.pv_hypercalls = true});
  auto without = filter_cpuid(host_like(), CpuidOptions{.pv_hypercalls = false});
  CHECK(find(with, 0xA).eax == 0);
  CHECK(find(with, 0x40000001).eax == 0xFFFF);
  const uint32_t eax = find(without, 0x40000001).eax;
  CHECK((eax & (1u << 7)) == 0);   // PV_UNHALT
  CHECK((eax & (1u << 11)) == 0);  // PV_SEND_IPI
  CHECK((eax & (1u << 13)) == 0);  // PV_SCHED_YIELD
  CHECK((eax & (1u << 3)) != 0);   // CLOCKSOURCE2 (no hypercall) stays
}

TEST_CASE("cpuid: the timing leaf 0x40000010 advertises the TSC rate", "[compute][cpuid]") {
  auto out = filter_cpuid(host_like(), CpuidOptions{.tsc_khz = 2000000});
  CHECK(find(out, 0x40000000).eax == 0x40000010);
  CHECK(find(out, 0x40000010).eax == 2000000);
  auto none = filter_cpuid(host_like(), CpuidOptions{.tsc_khz = 0});
  CHECK(std::none_of(none.begin(), none.end(), [](const auto& e) { return e.function == 0x40000010; }));
}

TEST_CASE("lapic: LINT0 becomes ExtINT and LINT1 NMI, other bits kept", "[compute][cpuid]") {
  kvm_lapic_state lapic{};
  lapic.regs[0x350] = 0xFF;  // vector bits must survive
  lapic.regs[0x351] = 0x01;  // delivery mode bits overwritten
  configure_lapic_lints(lapic);
  CHECK(static_cast<uint8_t>(lapic.regs[0x350]) == 0xFF);  // regs is char[]
  CHECK((lapic.regs[0x351] & 0x07) == 7);
  CHECK((lapic.regs[0x361] & 0x07) == 4);
}
