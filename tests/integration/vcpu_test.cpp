// compute::Vcpu on real /dev/kvm with tiny real-mode guests: its thread (name, signal mask, an
// exception escaping the run loop), its exit counters, and kicks only while the thread lives.
#include "compute/vcpu/vcpu.hpp"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "base/mmap_region.hpp"
#include "compute/exit_status.hpp"
#include "compute/kvm/kvm_system.hpp"
#include "tests/integration/requirements.hpp"

using namespace hcnode;
using namespace hcnode::compute;
using namespace std::chrono_literals;

namespace {

constexpr uint64_t kGuestMemSize = 1 << 20;
constexpr uint64_t kCodeAddr = 0x1000;

// Real-mode guests (x86 opcodes: B0 ib = mov al, imm8; E6 ib = out imm8, al; F4 = hlt;
// EB FE = jmp to itself).
constexpr uint8_t kThreeOutsThenHlt[] = {0xB0, 0x01, 0xE6, 0x80, 0xE6, 0x80, 0xE6, 0x80, 0xF4};
constexpr uint8_t kHlt[] = {0xF4};
constexpr uint8_t kSpin[] = {0xEB, 0xFE};
constexpr uint8_t kOutThenSpin[] = {0xB0, 0x01, 0xE6, 0x80, 0xEB, 0xFE};

// What the vCPU reports to its VM, recorded for the test.
class RecordingEvents final : public VcpuEvents {
 public:
  void vm_exit_requested(int status, const std::string& reason) override {
    std::lock_guard lock(mu_);
    if (!status_) {
      status_ = status;
      reason_ = reason;
    }
    cv_.notify_all();
  }
  // Hang guard only: a correct vCPU reports within microseconds.
  std::optional<int> wait(std::string* reason) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, 60s, [&] { return status_.has_value(); });
    if (reason != nullptr) *reason = reason_;
    return status_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<int> status_;
  std::string reason_;
};

class ThrowingDevice final : public BusDevice {
 public:
  void read(uint64_t, std::span<uint8_t>) override { throw std::runtime_error("device read exploded"); }
  void write(uint64_t, std::span<const uint8_t>) override { throw std::runtime_error("device write exploded"); }
};

// One KVM VM with 1 MiB of RAM and the given real-mode code at 0x1000, and one Vcpu on it.
struct TinyVm {
  explicit TinyVm(std::span<const uint8_t> code) {
    testing::require_kvm();
    auto k = kvm::KvmSystem::open();
    REQUIRE(k.has_value());
    system.emplace(std::move(*k));
    auto v = system->create_vm();
    REQUIRE(v.has_value());
    vm.emplace(std::move(*v));
    auto m = MmapRegion::anonymous(kGuestMemSize);
    REQUIRE(m.has_value());
    memory.emplace(std::move(*m));
    std::memcpy(memory->data() + kCodeAddr, code.data(), code.size());
    REQUIRE(vm->set_user_memory_region(0, 0, memory->size(), memory->data()).has_value());
    auto mmap_size = system->vcpu_mmap_size();
    REQUIRE(mmap_size.has_value());
    auto kv = vm->create_vcpu(0, *mmap_size);
    REQUIRE(kv.has_value());
    auto sregs = kv->get_sregs();
    REQUIRE(sregs.has_value());
    sregs->cs.base = 0;
    sregs->cs.selector = 0;
    REQUIRE(kv->set_sregs(*sregs).has_value());
    kvm_regs regs{};
    regs.rip = kCodeAddr;
    regs.rflags = 0x2;  // bit 1 is reserved and must be set
    REQUIRE(kv->set_regs(regs).has_value());
    Vcpu::install_kick_handler();
    vcpu = std::make_unique<Vcpu>(std::move(*kv), 0, pio, mmio, events);
  }

  std::optional<kvm::KvmSystem> system;
  std::optional<kvm::KvmVm> vm;
  std::optional<MmapRegion> memory;
  Bus pio{"pio"};
  Bus mmio{"mmio"};
  RecordingEvents events;
  std::unique_ptr<Vcpu> vcpu;
};

std::string task_file(pid_t tid, const char* name) {
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/" + name);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text;
}

// The thread with this tid has ended (its /proc entry goes when it exits, before any join).
// Polled, with a generous hang guard.
bool wait_thread_gone(pid_t tid) {
  const auto path = "/proc/self/task/" + std::to_string(tid);
  for (int i = 0; i < 60000; ++i) {
    if (!std::filesystem::exists(path)) return true;
    std::this_thread::sleep_for(1ms);
  }
  return false;
}

// The SigBlk mask of a thread (/proc/PID/task/TID/status, hex, bit n-1 = signal n).
uint64_t blocked_mask(pid_t tid) {
  const std::string status = task_file(tid, "status");
  const auto at = status.find("SigBlk:");
  REQUIRE(at != std::string::npos);
  return std::stoull(status.substr(at + 7), nullptr, 16);
}

// A stopped vCPU's state may be read (save_state is refused with EBUSY only while it runs;
// these VMs have no in-kernel LAPIC, so reading it may fail for that reason instead).
bool not_refused_as_running(Vcpu& vcpu) {
  auto state = vcpu.save_state();
  return state.has_value() || state.error().code() != EBUSY;
}

std::atomic<pid_t> g_victim_tid{0};
std::atomic<int> g_victim_signals{0};

}  // namespace

TEST_CASE("vCPU thread: named vcpu<N>, only the kick signal unblocked, exits counted", "[kvm][vcpu]") {
  TinyVm t(kThreeOutsThenHlt);
  REQUIRE(t.vcpu->start().has_value());
  const pid_t tid = t.vcpu->tid();
  REQUIRE(tid > 0);
  std::string reason;
  // The three OUTs to an unclaimed port, then HLT with no irqchip: the guest is done.
  REQUIRE(t.events.wait(&reason) == kExitGuestEnded);
  CHECK(reason == "vcpu0 halted");
  t.vcpu->stop();
  const VcpuStats s = t.vcpu->stats();
  CHECK(s.io == 3);
  CHECK(s.unhandled_io == 3);  // port 0x80 has no device: counted, dropped
  CHECK(s.hlt == 1);
  CHECK(s.mmio == 0);
}

TEST_CASE("vCPU thread: the kernel sees its name and signal mask while it runs", "[kvm][vcpu]") {
  TinyVm t(kSpin);
  REQUIRE(t.vcpu->start().has_value());
  const pid_t tid = t.vcpu->tid();
  REQUIRE(tid > 0);
  CHECK(task_file(tid, "comm") == "vcpu0\n");
  const uint64_t blocked = blocked_mask(tid);
  CHECK((blocked & (1ull << (SIGTERM - 1))) != 0);  // SIGTERM goes to the main thread's signalfd
  CHECK((blocked & (1ull << (SIGINT - 1))) != 0);
  CHECK((blocked & (1ull << (Vcpu::kick_signal() - 1))) == 0);  // the kick gets through
  t.vcpu->pause();
  CHECK(t.vcpu->paused());
  CHECK(t.vcpu->stats().kicks >= 1);  // the pause kicked the spinning vCPU out of KVM_RUN
  t.vcpu->resume();
  t.vcpu->stop();
}

TEST_CASE("vCPU kick: no signal once the thread has ended, before or after the join", "[kvm][vcpu]") {
  TinyVm t(kHlt);
  REQUIRE(t.vcpu->start().has_value());
  const pid_t tid = t.vcpu->tid();
  REQUIRE(t.events.wait(nullptr) == kExitGuestEnded);
  // The thread ended by itself (guest halted) and is not joined yet: pausing or stopping it
  // must not signal it (its pthread_t is still valid here, but not once it is joined).
  REQUIRE(wait_thread_gone(tid));
  t.vcpu->pause();  // returns at once: the thread is done
  t.vcpu->request_stop();
  CHECK(t.vcpu->stats().kicks == 0);
  t.vcpu->stop();  // joins

  // After the join glibc may hand the same pthread_t to the next thread created. A thread that
  // receives the kick signal and counts it stands there; every later kick must stay a no-op.
  struct sigaction counting {};
  counting.sa_handler = [](int) {
    if (static_cast<pid_t>(::syscall(SYS_gettid)) == g_victim_tid.load()) g_victim_signals.fetch_add(1);
  };
  sigemptyset(&counting.sa_mask);
  struct sigaction previous {};
  REQUIRE(sigaction(Vcpu::kick_signal(), &counting, &previous) == 0);
  std::atomic<bool> ready{false}, done{false};
  std::thread victim([&] {
    sigset_t kick;
    sigemptyset(&kick);
    sigaddset(&kick, Vcpu::kick_signal());
    pthread_sigmask(SIG_UNBLOCK, &kick, nullptr);
    g_victim_tid = static_cast<pid_t>(::syscall(SYS_gettid));
    ready = true;
    while (!done) std::this_thread::sleep_for(1ms);
  });
  while (!ready) std::this_thread::sleep_for(1ms);
  for (int i = 0; i < 100; ++i) {
    t.vcpu->pause();
    t.vcpu->resume();
    t.vcpu->request_stop();
    t.vcpu->stop();
  }
  done = true;
  victim.join();
  sigaction(Vcpu::kick_signal(), &previous, nullptr);
  CHECK(g_victim_signals.load() == 0);
  CHECK(t.vcpu->stats().kicks == 0);
  CHECK(not_refused_as_running(*t.vcpu));
}

TEST_CASE("vCPU: an exception escaping the run loop ends the VM as a VMM failure, not the process",
          "[kvm][vcpu]") {
  TinyVm t(kOutThenSpin);
  REQUIRE(t.pio.insert(0x80, 1, std::make_shared<ThrowingDevice>()).has_value());
  REQUIRE(t.vcpu->start().has_value());
  std::string reason;
  REQUIRE(t.events.wait(&reason) == kExitVmmFailure);
  INFO(reason);
  CHECK(reason.find("vcpu0") != std::string::npos);
  CHECK(reason.find("device write exploded") != std::string::npos);
  t.vcpu->pause();  // the thread is marked done: no wait for a thread that is gone
  t.vcpu->stop();
  CHECK(t.vcpu->stats().io == 1);
}

TEST_CASE("vCPU stop: several threads stopping it at once join its thread once", "[kvm][vcpu]") {
  // Each round: a spinning vCPU, stopped from four threads at the same moment while a fifth
  // pauses it (a control request racing with the end of the VM).
  for (int round = 0; round < 10; ++round) {
    TinyVm t(kSpin);
    REQUIRE(t.vcpu->start().has_value());
    std::atomic<bool> go{false};
    std::vector<std::thread> stoppers;
    for (int i = 0; i < 4; ++i) {
      stoppers.emplace_back([&] {
        while (!go) std::this_thread::yield();
        t.vcpu->stop();
      });
    }
    stoppers.emplace_back([&] {
      while (!go) std::this_thread::yield();
      t.vcpu->pause();
    });
    go = true;
    for (auto& s : stoppers) s.join();
    CHECK_FALSE(t.vcpu->paused());
    CHECK(not_refused_as_running(*t.vcpu));
  }
}
