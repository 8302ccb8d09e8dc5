// VcpuState: everything KVM holds for one vCPU that a snapshot or a live migration must carry —
// general and special registers, FPU/SSE, the local APIC, the multiprocessing state and the
// MSRs the VMM sets up. Plain data with a JSON form (versioned), so the same struct serves
// `vcpu_state` on the control socket today and the migration stream later.
//
// capture()/restore() use the vCPU's fd from the calling thread; the vCPU must be paused (out of
// KVM_RUN), which Vcpu::pause() guarantees.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "compute/kvm/kvm_vcpu.hpp"

namespace hcnode::compute {

struct VcpuState {
  static constexpr int kVersion = 1;
  kvm_regs regs{};
  kvm_sregs sregs{};
  kvm_fpu fpu{};
  kvm_lapic_state lapic{};
  kvm_mp_state mp_state{};
  std::vector<kvm_msr_entry> msrs;

  nlohmann::json to_json() const;
  static Result<VcpuState> from_json(const nlohmann::json& json);
};

// The MSRs captured with a vCPU (those the VMM sets at boot plus EFER/PAT/TSC-deadline state).
const std::vector<uint32_t>& migrated_msrs();

Result<VcpuState> capture_vcpu_state(const kvm::KvmVcpu& vcpu);
Status restore_vcpu_state(kvm::KvmVcpu& vcpu, const VcpuState& state);

}  // namespace hcnode::compute
