// Vcpu: one virtual CPU and the thread ("vcpu<N>") that runs it.
//
// The thread owns the KvmVcpu and loops on KVM_RUN, dispatching port I/O and MMIO exits to the
// VM's buses (devices run on this thread for the duration of the access) and reporting VM-level
// events (guest reset/poweroff, crash) to the VM through VcpuEvents. Everything else reaches it
// as a request:
//
//            request_pause()              request_resume()
//   Running ------------------> Paused ----------------------> Running
//      |  (kick: immediate_exit + kick signal, then ack)     |
//      +---------------- request_stop() ---------------> Stopped <+
//
// A kick sets kvm_run.immediate_exit and sends kKickSignal to the thread, so a KVM_RUN in
// progress returns with EINTR and the next one returns at once; the thread then looks at the
// requested state. pause() returns only once the vCPU is out of KVM_RUN and parked, so callers
// (migration, `pause` on the control socket) see a stopped guest.
//
// Thread-safety: request_* and stats() from any thread; the run loop only on its own thread.
#pragma once

#include <pthread.h>
#include <sys/types.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "base/result.hpp"
#include "compute/devices/bus.hpp"
#include "compute/kvm/kvm_vcpu.hpp"
#include "compute/vcpu/vcpu_state.hpp"

namespace hcnode::compute {

// What a vCPU tells its VM. Called on the vCPU thread.
class VcpuEvents {
 public:
  virtual ~VcpuEvents() = default;
  // The guest asked to end the VM (reset, poweroff) or crashed; status per exit_status.hpp.
  virtual void vm_exit_requested(int status, const std::string& reason) = 0;
};

struct VcpuStats {
  uint64_t io = 0;
  uint64_t mmio = 0;
  uint64_t hlt = 0;
  uint64_t intr = 0;     // KVM_RUN interrupted by a kick or signal
  uint64_t shutdown = 0;
  uint64_t system_event = 0;
  uint64_t internal_error = 0;
  uint64_t other = 0;
  uint64_t unhandled_io = 0;  // accesses to ports/addresses no device claims
};

class Vcpu {
 public:
  // Signal used to kick vCPU threads out of KVM_RUN (handler is a no-op).
  static int kick_signal();
  // Installs the no-op handler for kick_signal(). Call once per process before start().
  static void install_kick_handler();

  Vcpu(kvm::KvmVcpu vcpu, uint32_t index, const Bus& pio, const Bus& mmio, VcpuEvents& events);
  ~Vcpu();
  Vcpu(const Vcpu&) = delete;
  Vcpu& operator=(const Vcpu&) = delete;

  uint32_t index() const { return index_; }
  // The vCPU before start(): for set-up ioctls (registers, CPUID, MSRs) on the creating thread.
  kvm::KvmVcpu& kvm_for_setup() { return vcpu_; }

  // Starts the thread; the vCPU runs the guest right away (or parks, if start_paused).
  void start(bool start_paused = false);
  // Blocks until the vCPU is parked outside KVM_RUN (or has stopped).
  void pause();
  void resume();
  // Asks the thread to end without waiting (any thread, including the vCPU's own: a device
  // that ends the VM stops its vCPU before the guest executes another instruction).
  void request_stop();
  // Asks the thread to end and joins it. Idempotent.
  void stop();

  // The vCPU's KVM state; EBUSY unless the vCPU is paused (or not started).
  Result<VcpuState> save_state();

  pid_t tid() const { return tid_.load(); }
  bool paused() const;
  VcpuStats stats() const;

 private:
  enum class State { kRunning, kPaused, kStopped };
  void run_loop();
  void kick();
  // Handles one VM exit; false when the vCPU must stop.
  bool handle_exit();
  void count(uint64_t VcpuStats::*field);

  kvm::KvmVcpu vcpu_;
  const uint32_t index_;
  const Bus& pio_;
  const Bus& mmio_;
  VcpuEvents& events_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  State requested_ = State::kRunning;  // guarded by mu_
  State current_ = State::kPaused;     // guarded by mu_: where the thread actually is
  bool thread_done_ = false;           // guarded by mu_

  mutable std::mutex stats_mu_;
  VcpuStats stats_;                    // guarded by stats_mu_

  std::atomic<pid_t> tid_{0};
  std::thread thread_;
  std::atomic<bool> thread_valid_{false};
  pthread_t pthread_{};
};

}  // namespace hcnode::compute
