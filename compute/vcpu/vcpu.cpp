#include "compute/vcpu/vcpu.hpp"

#include <semaphore>

#include <signal.h>

#include <cstring>

#include <spdlog/spdlog.h>

#include "base/thread.hpp"
#include "compute/exit_status.hpp"

namespace hcnode::compute {

int Vcpu::kick_signal() { return SIGRTMIN; }

void Vcpu::install_kick_handler() {
  struct sigaction sa {};
  // The handler does nothing: its only job is to make KVM_RUN return EINTR.
  sa.sa_handler = [](int) {};
  sigemptyset(&sa.sa_mask);
  sigaction(kick_signal(), &sa, nullptr);
}

Vcpu::Vcpu(kvm::KvmVcpu vcpu, uint32_t index, const Bus& pio, const Bus& mmio, VcpuEvents& events)
    : vcpu_(std::move(vcpu)), index_(index), pio_(pio), mmio_(mmio), events_(events) {}

Vcpu::~Vcpu() { stop(); }

void Vcpu::start(bool start_paused) {
  {
    std::lock_guard lock(mu_);
    requested_ = start_paused ? State::kPaused : State::kRunning;
  }
  // start() returns once the thread is named and its id published: the control socket (served
  // right after the VM starts) then describes real threads, never a tid of 0.
  std::binary_semaphore started(0);
  thread_ = std::thread([this, &started] {
    set_current_thread_name("vcpu" + std::to_string(index_));
    // Only the kick signal reaches a vCPU thread; everything else goes to the main thread.
    sigset_t mask;
    sigfillset(&mask);
    sigdelset(&mask, kick_signal());
    pthread_sigmask(SIG_SETMASK, &mask, nullptr);
    tid_ = current_tid();
    started.release();
    run_loop();
  });
  pthread_ = thread_.native_handle();
  thread_valid_ = true;
  started.acquire();
}

void Vcpu::kick() {
  vcpu_.set_immediate_exit(true);
  if (thread_valid_) {
    pthread_kill(pthread_, kick_signal());
  }
}

void Vcpu::pause() {
  std::unique_lock lock(mu_);
  if (requested_ == State::kStopped) {
    return;
  }
  requested_ = State::kPaused;
  lock.unlock();
  kick();
  lock.lock();
  cv_.wait(lock, [&] { return current_ == State::kPaused || thread_done_; });
}

void Vcpu::resume() {
  std::lock_guard lock(mu_);
  if (requested_ == State::kPaused) {
    requested_ = State::kRunning;
    cv_.notify_all();
  }
}

void Vcpu::request_stop() {
  {
    std::lock_guard lock(mu_);
    requested_ = State::kStopped;
    cv_.notify_all();
  }
  // On the vCPU's own thread the kick only sets immediate_exit (the signal is blocked until the
  // next KVM_RUN, which returns at once); the loop then sees kStopped.
  kick();
}

void Vcpu::stop() {
  request_stop();
  if (thread_.joinable()) {
    thread_.join();
    thread_valid_ = false;
  }
}

Result<VcpuState> Vcpu::save_state() {
  std::lock_guard lock(mu_);
  // Parked (or never started): no KVM_RUN in progress, so this thread may use the vCPU fd.
  if (thread_.joinable() && current_ != State::kPaused && current_ != State::kStopped) {
    return fail(EBUSY, "vcpu" + std::to_string(index_) + " is running; pause the VM first");
  }
  return capture_vcpu_state(vcpu_);
}

bool Vcpu::paused() const {
  std::lock_guard lock(mu_);
  return current_ == State::kPaused;
}

VcpuStats Vcpu::stats() const {
  std::lock_guard lock(stats_mu_);
  return stats_;
}

void Vcpu::count(uint64_t VcpuStats::*field) {
  std::lock_guard lock(stats_mu_);
  ++(stats_.*field);
}

void Vcpu::run_loop() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      while (requested_ == State::kPaused) {
        current_ = State::kPaused;
        cv_.notify_all();
        cv_.wait(lock);
      }
      if (requested_ == State::kStopped) {
        break;
      }
      current_ = State::kRunning;
    }
    auto r = vcpu_.run();
    if (!r) {
      if (r.error().code() == EINTR || r.error().code() == EAGAIN) {
        vcpu_.set_immediate_exit(false);
        count(&VcpuStats::intr);
        continue;
      }
      spdlog::error("vcpu{}: {}", index_, r.error().message());
      events_.vm_exit_requested(kExitVmmFailure, r.error().message());
      break;
    }
    if (!handle_exit()) {
      break;
    }
  }
  std::lock_guard lock(mu_);
  current_ = State::kStopped;
  thread_done_ = true;
  cv_.notify_all();
}

bool Vcpu::handle_exit() {
  kvm_run* run = vcpu_.run_state();
  switch (run->exit_reason) {
    case KVM_EXIT_IO: {
      count(&VcpuStats::io);
      // SAFETY: KVM places io.count * io.size bytes of data at data_offset inside the kvm_run
      // mapping (KVM API doc, KVM_EXIT_IO).
      uint8_t* data = reinterpret_cast<uint8_t*>(run) + run->io.data_offset;
      for (uint32_t i = 0; i < run->io.count; ++i) {
        std::span<uint8_t> chunk(data + static_cast<size_t>(i) * run->io.size, run->io.size);
        const bool claimed = run->io.direction == KVM_EXIT_IO_OUT ? pio_.write(run->io.port, chunk)
                                                                 : pio_.read(run->io.port, chunk);
        if (!claimed) {
          count(&VcpuStats::unhandled_io);
        }
      }
      return true;
    }
    case KVM_EXIT_MMIO: {
      count(&VcpuStats::mmio);
      const uint32_t len = std::min<uint32_t>(run->mmio.len, sizeof run->mmio.data);
      std::span<uint8_t> data(run->mmio.data, len);
      const bool claimed = run->mmio.is_write ? mmio_.write(run->mmio.phys_addr, data)
                                              : mmio_.read(run->mmio.phys_addr, data);
      if (!claimed) {
        count(&VcpuStats::unhandled_io);
      }
      return true;
    }
    case KVM_EXIT_INTR:
      count(&VcpuStats::intr);
      return true;
    case KVM_EXIT_HLT:
      // With the in-kernel LAPIC, HLT is handled by KVM; an exit here means a halt that nothing
      // can wake (no irqchip): the guest is done.
      count(&VcpuStats::hlt);
      events_.vm_exit_requested(kExitGuestEnded, "vcpu" + std::to_string(index_) + " halted");
      return false;
    case KVM_EXIT_SHUTDOWN:
      count(&VcpuStats::shutdown);
      events_.vm_exit_requested(kExitGuestCrashed, "vcpu" + std::to_string(index_) + ": triple fault (shutdown)");
      return false;
    case KVM_EXIT_SYSTEM_EVENT: {
      count(&VcpuStats::system_event);
      const uint32_t type = run->system_event.type;
      if (type == KVM_SYSTEM_EVENT_CRASH) {
        events_.vm_exit_requested(kExitGuestCrashed, "guest reported a crash");
      } else {
        events_.vm_exit_requested(kExitGuestEnded, type == KVM_SYSTEM_EVENT_RESET ? "guest reset" : "guest poweroff");
      }
      return false;
    }
    case KVM_EXIT_INTERNAL_ERROR: {
      count(&VcpuStats::internal_error);
      std::string reason = "vcpu" + std::to_string(index_) + ": KVM internal error, suberror " +
                           std::to_string(run->internal.suberror);
      if (auto regs = vcpu_.get_regs(); regs) {
        reason += fmt::format(" at rip {:#x}", regs->rip);
      }
      spdlog::error("{}", reason);
      events_.vm_exit_requested(kExitGuestCrashed, reason);
      return false;
    }
    case KVM_EXIT_FAIL_ENTRY: {
      std::string reason = fmt::format("vcpu{}: VM entry failed, hardware reason {:#x}", index_,
                                       run->fail_entry.hardware_entry_failure_reason);
      spdlog::error("{}", reason);
      events_.vm_exit_requested(kExitGuestCrashed, reason);
      return false;
    }
    default: {
      count(&VcpuStats::other);
      std::string reason = fmt::format("vcpu{}: unexpected KVM exit reason {}", index_, run->exit_reason);
      spdlog::error("{}", reason);
      events_.vm_exit_requested(kExitVmmFailure, reason);
      return false;
    }
  }
}

}  // namespace hcnode::compute
