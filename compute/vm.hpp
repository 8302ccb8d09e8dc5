// Vm: one KVM virtual machine, built from a VmConfig and owned by the VMM's control thread.
//
// Build order (create()): /dev/kvm -> VM -> TSS/identity-map addresses -> in-kernel irqchip and
// PIT -> guest RAM memslots -> interrupt routing -> devices on the PIO/MMIO buses -> vCPUs
// (CPUID, MSRs, FPU, LAPIC) -> kernel, initrd, command line, MP table -> BSP registers.
//
// Lifecycle: created -> running <-> paused -> stopped. The guest (reset, poweroff, debug exit,
// crash), a control request or a signal ends it; wait_for_exit() then returns the exit status
// (exit_status.hpp) and the reason.
//
// Thread-safety: create/start/pause/resume/stop/describe/stats are called on the control
// thread. request_exit() may be called from any thread (vCPUs, devices, signal handling).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/event_fd.hpp"
#include "base/result.hpp"
#include "blockdev/open_backend.hpp"
#include "compute/console/console.hpp"
#include "compute/devices/bus.hpp"
#include "compute/kvm/kvm_interrupts.hpp"
#include "compute/kvm/kvm_system.hpp"
#include "compute/memory/guest_ram.hpp"
#include "compute/vcpu/vcpu.hpp"
#include "compute/vm_config.hpp"

namespace hcnode::compute {

class Serial8250;
namespace pci {
class PciRoot;
}
namespace virtio {
class VirtioPciTransport;
class VirtioBlk;
}

struct VmBuildError {
  int exit_status;  // exit_status.hpp: which kind of failure
  Error error;
};

enum class VmState { kCreated, kRunning, kPaused, kStopped };
const char* vm_state_name(VmState state);

class Vm final : public VcpuEvents {
 public:
  static std::expected<std::unique_ptr<Vm>, VmBuildError> create(const VmConfig& config);
  ~Vm() override;

  Status start();
  Status pause();
  Status resume();
  // Stops the vCPUs and devices (idempotent).
  void stop();
  // After stop(), when the process exits next: storage connections are dropped without their
  // slow orderly teardown (glfs_fini, ~10 s).
  void prepare_process_exit();

  // Any thread: ends the VM with status (first caller wins) and wakes wait handles.
  void request_exit(int status, const std::string& reason);
  // Becomes readable once request_exit() was called (for the control loop's epoll).
  int exit_fd() const { return exit_event_.fd(); }
  bool exit_requested() const { return exit_status_.load() >= 0; }
  int exit_status() const { return exit_status_.load(); }
  std::string exit_reason() const;

  VmState state() const { return state_.load(); }
  nlohmann::json describe() const;
  nlohmann::json stats() const;
  // Every vCPU's KVM state (VcpuState::to_json); the VM must be paused.
  Result<nlohmann::json> vcpu_states();
  std::string console_history() const { return console_->history(); }

  // VcpuEvents
  void vm_exit_requested(int status, const std::string& reason) override { request_exit(status, reason); }

 private:
  Vm(VmConfig config, kvm::KvmSystem kvm, kvm::KvmVm vm, GuestRam ram, EventFd exit_event);
  std::expected<void, VmBuildError> build();

  struct DeviceInfo {
    std::string name;
    std::string bus;
    uint64_t base;
    uint64_t length;
  };
  Status add_pio_device(std::string name, uint64_t base, uint64_t len, std::shared_ptr<BusDevice> dev);
  std::expected<void, VmBuildError> add_disks();
  void pause_devices();
  void resume_devices();

  VmConfig config_;
  kvm::KvmSystem kvm_;
  kvm::KvmVm vm_;
  GuestRam ram_;
  EventFd exit_event_;
  std::shared_ptr<kvm::KvmInterrupts> interrupts_;
  Bus pio_{"pio"};
  Bus mmio_{"mmio"};
  // Storage connections shared by the disks (one librados client, one glfs_t per volume);
  // declared before the devices so that it outlives their backends.
  std::shared_ptr<blockdev::StorageSessions> storage_;
  std::unique_ptr<Console> console_;
  std::shared_ptr<Serial8250> serial_;
  std::shared_ptr<pci::PciRoot> pci_;
  std::vector<DeviceInfo> devices_;
  struct PciDeviceInfo {
    std::string name;
    uint8_t slot;
    std::shared_ptr<virtio::VirtioPciTransport> transport;
  };
  std::vector<PciDeviceInfo> pci_devices_;
  struct DiskInfo {
    std::string name;  // "blk0"
    DiskConfig config;
    std::shared_ptr<virtio::VirtioBlk> device;
    uint8_t slot;
  };
  std::vector<DiskInfo> disks_;
  std::vector<std::unique_ptr<Vcpu>> vcpus_;
  nlohmann::json boot_info_;
  bool pv_hypercalls_ = true;

  std::atomic<VmState> state_{VmState::kCreated};
  std::atomic<int> exit_status_{-1};
  mutable std::mutex exit_mu_;
  std::string exit_reason_;  // guarded by exit_mu_
  std::chrono::steady_clock::time_point started_;
};

}  // namespace hcnode::compute
