#include "compute/vcpu/vcpu_state.hpp"

#include <cstring>

namespace hcnode::compute {
namespace {

// Fixed-layout kernel structs travel as hex strings of their bytes: exact, and independent of
// how many fields a given kernel version names.
template <typename T>
std::string to_hex(const T& value) {
  static const char* kDigits = "0123456789abcdef";
  // SAFETY: T is a plain kernel struct; its object representation is what the kernel reads.
  const auto* bytes = reinterpret_cast<const uint8_t*>(&value);
  std::string out;
  out.reserve(sizeof(T) * 2);
  for (size_t i = 0; i < sizeof(T); ++i) {
    out.push_back(kDigits[bytes[i] >> 4]);
    out.push_back(kDigits[bytes[i] & 15]);
  }
  return out;
}

template <typename T>
Status from_hex(const nlohmann::json& json, const char* key, T& out) {
  auto it = json.find(key);
  if (it == json.end() || !it->is_string() || it->get_ref<const std::string&>().size() != sizeof(T) * 2) {
    return fail(EINVAL, std::string("vcpu state: '") + key + "' missing or of the wrong size");
  }
  const std::string& hex = it->get_ref<const std::string&>();
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  // SAFETY: T is a plain kernel struct; every byte pattern is a value the kernel validates.
  auto* bytes = reinterpret_cast<uint8_t*>(&out);
  for (size_t i = 0; i < sizeof(T); ++i) {
    int hi = nibble(hex[2 * i]);
    int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return fail(EINVAL, std::string("vcpu state: '") + key + "' is not lowercase hex");
    }
    bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return {};
}

}  // namespace

const std::vector<uint32_t>& migrated_msrs() {
  static const std::vector<uint32_t> kMsrs = {
      0x174, 0x175, 0x176,                                  // SYSENTER_CS/ESP/EIP
      0xC0000081, 0xC0000082, 0xC0000083, 0xC0000084,       // STAR, LSTAR, CSTAR, SFMASK
      0xC0000102,                                           // KERNEL_GS_BASE
      0x10,                                                 // TSC
      0x1A0,                                                // MISC_ENABLE
      0x277,                                                // PAT
      0x2FF,                                                // MTRRdefType
      0x4B564D00, 0x4B564D01,                               // kvmclock (wall clock, system time)
  };
  return kMsrs;
}

nlohmann::json VcpuState::to_json() const {
  nlohmann::json msr_list = nlohmann::json::array();
  for (const auto& m : msrs) {
    msr_list.push_back({m.index, m.data});
  }
  return {{"version", kVersion},
          {"rip", regs.rip},  // readable summary; the hex blobs are authoritative
          {"cs_selector", sregs.cs.selector},
          {"cpl", sregs.cs.dpl},
          {"regs", to_hex(regs)},
          {"sregs", to_hex(sregs)},
          {"fpu", to_hex(fpu)},
          {"lapic", to_hex(lapic)},
          {"mp_state", mp_state.mp_state},
          {"msrs", msr_list}};
}

Result<VcpuState> VcpuState::from_json(const nlohmann::json& json) {
  if (!json.is_object() || json.value("version", 0) != kVersion) {
    return fail(EINVAL, "vcpu state: not a version " + std::to_string(kVersion) + " object");
  }
  VcpuState s;
  HCN_TRY_STATUS(from_hex(json, "regs", s.regs));
  HCN_TRY_STATUS(from_hex(json, "sregs", s.sregs));
  HCN_TRY_STATUS(from_hex(json, "fpu", s.fpu));
  HCN_TRY_STATUS(from_hex(json, "lapic", s.lapic));
  auto mp = json.find("mp_state");
  if (mp == json.end() || !mp->is_number_unsigned()) {
    return fail(EINVAL, "vcpu state: 'mp_state' missing");
  }
  s.mp_state.mp_state = mp->get<uint32_t>();
  auto msrs = json.find("msrs");
  if (msrs == json.end() || !msrs->is_array()) {
    return fail(EINVAL, "vcpu state: 'msrs' missing");
  }
  for (const auto& m : *msrs) {
    if (!m.is_array() || m.size() != 2 || !m[0].is_number_unsigned() || !m[1].is_number_unsigned()) {
      return fail(EINVAL, "vcpu state: each MSR is [index, value]");
    }
    kvm_msr_entry e{};
    e.index = m[0].get<uint32_t>();
    e.data = m[1].get<uint64_t>();
    s.msrs.push_back(e);
  }
  return s;
}

Result<VcpuState> capture_vcpu_state(const kvm::KvmVcpu& vcpu) {
  VcpuState s;
  s.regs = HCN_TRY(vcpu.get_regs());
  s.sregs = HCN_TRY(vcpu.get_sregs());
  s.fpu = HCN_TRY(vcpu.get_fpu());
  s.lapic = HCN_TRY(vcpu.get_lapic());
  s.mp_state = HCN_TRY(vcpu.get_mp_state());
  s.msrs = HCN_TRY(vcpu.get_msrs(migrated_msrs()));
  return s;
}

Status restore_vcpu_state(kvm::KvmVcpu& vcpu, const VcpuState& state) {
  // Order matters: special registers (mode, paging) before general ones, the APIC before the
  // MP state that refers to it, MSRs last (some depend on CPUID/mode).
  HCN_TRY_STATUS(vcpu.set_sregs(state.sregs));
  HCN_TRY_STATUS(vcpu.set_regs(state.regs));
  HCN_TRY_STATUS(vcpu.set_fpu(state.fpu));
  HCN_TRY_STATUS(vcpu.set_lapic(state.lapic));
  HCN_TRY_STATUS(vcpu.set_mp_state(state.mp_state));
  HCN_TRY_STATUS(vcpu.set_msrs(state.msrs));
  return {};
}

}  // namespace hcnode::compute
