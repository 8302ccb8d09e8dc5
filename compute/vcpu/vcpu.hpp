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
// The thread comes from spawn_named_thread (named "vcpu<N>", all signals blocked but the kick
// signal; an exception escaping the run loop ends the VM with kExitVmmFailure instead of
// terminating the process). A kick signals the thread only while it runs: the thread withdraws
// itself (under kick_mu_) before it ends, so a kick racing with stop() or with the thread's
// own end never reaches a thread that is gone, whose pthread_t glibc may already have handed
// to a new thread.
//
// Thread-safety: request_*, pause/resume/stop and stats() from any thread; the run loop only
// on its own thread. Exit counters are written by the vCPU thread alone, as relaxed atomics:
// the exit path takes no lock.
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
  uint64_t kicks = 0;         // kick signals sent to the thread (pause, stop from elsewhere)
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

  // Starts the thread; the vCPU runs the guest right away (or parks, if start_paused). Returns
  // once the thread is named and its tid published. Fails (EAGAIN, ...) if no thread could be
  // created; call it once.
  Status start(bool start_paused = false);
  // Blocks until the vCPU is parked outside KVM_RUN (or has stopped).
  void pause();
  void resume();
  // Asks the thread to end without waiting (any thread, including the vCPU's own: a device
  // that ends the VM stops its vCPU before the guest executes another instruction).
  void request_stop();
  // Asks the thread to end and joins it. Idempotent, and safe from several threads at once.
  void stop();

  // The vCPU's KVM state; EBUSY unless the vCPU is paused (or not started).
  Result<VcpuState> save_state();

  pid_t tid() const { return tid_.load(); }
  bool paused() const;
  VcpuStats stats() const;

 private:
  enum class State { kRunning, kPaused, kStopped };
  // One counter per VcpuStats field; written only by the vCPU thread.
  struct Counters {
    std::atomic<uint64_t> io{0}, mmio{0}, hlt{0}, intr{0}, shutdown{0}, system_event{0},
        internal_error{0}, other{0}, unhandled_io{0};
  };
  static_assert(std::atomic<uint64_t>::is_always_lock_free);

  void thread_body();
  void run_loop();
  void kick();
  // Handles one VM exit; false when the vCPU must stop.
  bool handle_exit();
  void count(std::atomic<uint64_t> Counters::*field);

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

  Counters counters_;

  std::atomic<pid_t> tid_{0};
  std::mutex kick_mu_;
  bool signalable_ = false;  // guarded by kick_mu_: the thread runs and may be signalled
  pthread_t pthread_{};      // guarded by kick_mu_: the thread's id while signalable_
  std::atomic<uint64_t> kicks_{0};  // written under kick_mu_, read relaxed by stats()

  std::mutex join_mu_;  // one joiner at a time
  std::jthread thread_;
};

}  // namespace hcnode::compute
