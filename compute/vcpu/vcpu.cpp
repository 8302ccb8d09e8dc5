#include "compute/vcpu/vcpu.hpp"

#include <signal.h>

#include <cstring>
#include <semaphore>
#include <system_error>

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

Status Vcpu::start(bool start_paused) {
  {
    std::lock_guard lock(mu_);
    requested_ = start_paused ? State::kPaused : State::kRunning;
  }
  // start() returns once the thread is named and its id published: the control socket (served
  // right after the VM starts) then describes real threads, never a tid of 0.
  std::binary_semaphore started(0);
  ThreadOptions options;
  // An exception escaping the run loop (a device throwing, an allocation failing) ends the VM
  // as a VMM failure instead of the process; thread_body() has marked the thread done by then.
  options.on_failure = [this](const std::string& what) { events_.vm_exit_requested(kExitVmmFailure, what); };
  try {
    thread_ = spawn_named_thread(
        "vcpu" + std::to_string(index_),
        [this, &started](std::stop_token) {
          // spawn_named_thread blocked every signal; the kick signal alone reaches a vCPU thread
          // (SIGTERM/SIGINT go to the main thread's signalfd).
          sigset_t kick_only;
          sigemptyset(&kick_only);
          sigaddset(&kick_only, kick_signal());
          pthread_sigmask(SIG_UNBLOCK, &kick_only, nullptr);
          tid_ = current_tid();
          {
            std::lock_guard lock(kick_mu_);
            pthread_ = pthread_self();
            signalable_ = true;
          }
          started.release();
          thread_body();
        },
        std::move(options));
  } catch (const std::system_error& e) {
    return fail(e.code().value(), "vcpu" + std::to_string(index_) + ": cannot create its thread: " + e.what());
  }
  started.acquire();
  return {};
}

void Vcpu::thread_body() {
  // However the loop ends (returns, or throws into spawn_named_thread's handler), the thread
  // first withdraws from kicks, then tells waiters in pause() it is done.
  struct Done {
    Vcpu& v;
    ~Done() {
      {
        std::lock_guard lock(v.kick_mu_);
        v.signalable_ = false;
      }
      std::lock_guard lock(v.mu_);
      v.current_ = State::kStopped;
      v.thread_done_ = true;
      v.cv_.notify_all();
    }
  } done{*this};
  run_loop();
}

void Vcpu::kick() {
  vcpu_.set_immediate_exit(true);
  // Holding kick_mu_, the thread cannot withdraw and end, so pthread_ still names it; once it
  // has withdrawn, a kick is only the immediate_exit flag (harmless: nothing runs the vCPU).
  std::lock_guard lock(kick_mu_);
  if (signalable_) {
    pthread_kill(pthread_, kick_signal());
    kicks_.fetch_add(1, std::memory_order_relaxed);
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
  // On the vCPU's own thread (a device ending the VM) the no-op handler runs at once and the
  // immediate_exit flag makes the next KVM_RUN return; the loop then sees kStopped.
  kick();
}

void Vcpu::stop() {
  request_stop();
  std::lock_guard lock(join_mu_);
  if (thread_.joinable()) {
    thread_.join();
  }
}

Result<VcpuState> Vcpu::save_state() {
  std::lock_guard lock(mu_);
  // Parked, stopped or never started (current_ starts as kPaused): no KVM_RUN in progress, so
  // this thread may use the vCPU fd.
  if (current_ == State::kRunning) {
    return fail(EBUSY, "vcpu" + std::to_string(index_) + " is running; pause the VM first");
  }
  return capture_vcpu_state(vcpu_);
}

bool Vcpu::paused() const {
  std::lock_guard lock(mu_);
  return current_ == State::kPaused;
}

VcpuStats Vcpu::stats() const {
  constexpr auto r = std::memory_order_relaxed;
  const Counters& c = counters_;
  return VcpuStats{.io = c.io.load(r),
                   .mmio = c.mmio.load(r),
                   .hlt = c.hlt.load(r),
                   .intr = c.intr.load(r),
                   .shutdown = c.shutdown.load(r),
                   .system_event = c.system_event.load(r),
                   .internal_error = c.internal_error.load(r),
                   .other = c.other.load(r),
                   .unhandled_io = c.unhandled_io.load(r),
                   .kicks = kicks_.load(r)};
}

void Vcpu::count(std::atomic<uint64_t> Counters::*field) {
  // The exit path: the vCPU thread is the only writer, so a relaxed load and store (no lock, no
  // locked read-modify-write) lose nothing; stats() may read a count one exit old.
  std::atomic<uint64_t>& counter = counters_.*field;
  counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
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
        count(&Counters::intr);
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
}

bool Vcpu::handle_exit() {
  kvm_run* run = vcpu_.run_state();
  switch (run->exit_reason) {
    case KVM_EXIT_IO: {
      count(&Counters::io);
      // SAFETY: KVM places io.count * io.size bytes of data at data_offset inside the kvm_run
      // mapping (KVM API doc, KVM_EXIT_IO).
      uint8_t* data = reinterpret_cast<uint8_t*>(run) + run->io.data_offset;
      for (uint32_t i = 0; i < run->io.count; ++i) {
        std::span<uint8_t> chunk(data + static_cast<size_t>(i) * run->io.size, run->io.size);
        const bool claimed = run->io.direction == KVM_EXIT_IO_OUT ? pio_.write(run->io.port, chunk)
                                                                 : pio_.read(run->io.port, chunk);
        if (!claimed) {
          count(&Counters::unhandled_io);
        }
      }
      return true;
    }
    case KVM_EXIT_MMIO: {
      count(&Counters::mmio);
      const uint32_t len = std::min<uint32_t>(run->mmio.len, sizeof run->mmio.data);
      std::span<uint8_t> data(run->mmio.data, len);
      const bool claimed = run->mmio.is_write ? mmio_.write(run->mmio.phys_addr, data)
                                              : mmio_.read(run->mmio.phys_addr, data);
      if (!claimed) {
        count(&Counters::unhandled_io);
      }
      return true;
    }
    case KVM_EXIT_INTR:
      count(&Counters::intr);
      return true;
    case KVM_EXIT_HLT:
      // With the in-kernel LAPIC, HLT is handled by KVM; an exit here means a halt that nothing
      // can wake (no irqchip): the guest is done.
      count(&Counters::hlt);
      events_.vm_exit_requested(kExitGuestEnded, "vcpu" + std::to_string(index_) + " halted");
      return false;
    case KVM_EXIT_SHUTDOWN:
      count(&Counters::shutdown);
      events_.vm_exit_requested(kExitGuestCrashed, "vcpu" + std::to_string(index_) + ": triple fault (shutdown)");
      return false;
    case KVM_EXIT_SYSTEM_EVENT: {
      count(&Counters::system_event);
      const uint32_t type = run->system_event.type;
      if (type == KVM_SYSTEM_EVENT_CRASH) {
        events_.vm_exit_requested(kExitGuestCrashed, "guest reported a crash");
      } else {
        events_.vm_exit_requested(kExitGuestEnded, type == KVM_SYSTEM_EVENT_RESET ? "guest reset" : "guest poweroff");
      }
      return false;
    }
    case KVM_EXIT_INTERNAL_ERROR: {
      count(&Counters::internal_error);
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
      count(&Counters::other);
      std::string reason = fmt::format("vcpu{}: unexpected KVM exit reason {}", index_, run->exit_reason);
      spdlog::error("{}", reason);
      events_.vm_exit_requested(kExitVmmFailure, reason);
      return false;
    }
  }
}

}  // namespace hcnode::compute
