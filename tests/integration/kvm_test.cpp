// Real /dev/kvm: a VM with one vCPU runs a few real-mode instructions to an I/O exit and a HLT.
#include <linux/kvm.h>

#include <cstring>

#include <catch2/catch.hpp>

#include "base/mmap_region.hpp"
#include "compute/kvm/kvm_system.hpp"
#include "tests/integration/requirements.hpp"

using namespace hcnode;
using namespace hcnode::kvm;

namespace {

constexpr uint64_t kGuestMemSize = 1 << 20;
constexpr uint64_t kCodeAddr = 0x1000;

// Real-mode code: mov dx,0x3f8; mov al,'K'; out dx,al; inc al; out dx,al; hlt
constexpr uint8_t kCode[] = {0xBA, 0xF8, 0x03, 0xB0, 'K', 0xEE, 0xFE, 0xC0, 0xEE, 0xF4};

struct IoExit {
  uint16_t port;
  uint8_t direction;
  uint8_t size;
  uint8_t value;
};

IoExit io_exit(const KvmVcpu& vcpu) {
  kvm_run* run = vcpu.run_state();
  IoExit e{run->io.port, run->io.direction, run->io.size, 0};
  // SAFETY: data_offset points inside the kvm_run mapping (KVM ABI) at io.size * io.count bytes.
  std::memcpy(&e.value, reinterpret_cast<uint8_t*>(run) + run->io.data_offset, 1);
  return e;
}

}  // namespace

TEST_CASE("KVM: a vCPU runs real-mode code to an I/O exit and a HLT exit", "[kvm]") {
  testing::require_kvm();
  auto kvm = KvmSystem::open();
  REQUIRE(kvm.has_value());
  CHECK(kvm->check_extension(KVM_CAP_USER_MEMORY) > 0);
  auto vm = kvm->create_vm();
  REQUIRE(vm.has_value());

  auto memory = MmapRegion::anonymous(kGuestMemSize);
  REQUIRE(memory.has_value());
  std::memcpy(memory->data() + kCodeAddr, kCode, sizeof kCode);
  REQUIRE(vm->set_user_memory_region(0, 0, memory->size(), memory->data()).has_value());

  auto mmap_size = kvm->vcpu_mmap_size();
  REQUIRE(mmap_size.has_value());
  auto vcpu = vm->create_vcpu(0, *mmap_size);
  REQUIRE(vcpu.has_value());

  auto sregs = vcpu->get_sregs();
  REQUIRE(sregs.has_value());
  sregs->cs.base = 0;
  sregs->cs.selector = 0;
  REQUIRE(vcpu->set_sregs(*sregs).has_value());
  kvm_regs regs{};
  regs.rip = kCodeAddr;
  regs.rflags = 0x2;  // bit 1 is reserved and must be set
  REQUIRE(vcpu->set_regs(regs).has_value());

  REQUIRE(vcpu->run().has_value());
  REQUIRE(vcpu->run_state()->exit_reason == KVM_EXIT_IO);
  IoExit first = io_exit(*vcpu);
  CHECK(first.port == 0x3F8);
  CHECK(first.direction == KVM_EXIT_IO_OUT);
  CHECK(first.size == 1);
  CHECK(first.value == 'K');

  REQUIRE(vcpu->run().has_value());
  REQUIRE(vcpu->run_state()->exit_reason == KVM_EXIT_IO);
  CHECK(io_exit(*vcpu).value == 'L');  // the guest's inc al ran between the exits

  REQUIRE(vcpu->run().has_value());
  CHECK(vcpu->run_state()->exit_reason == KVM_EXIT_HLT);
  auto after = vcpu->get_regs();
  REQUIRE(after.has_value());
  CHECK(after->rip == kCodeAddr + sizeof kCode);  // HLT retired
  CHECK((after->rax & 0xFF) == 'L');
}

TEST_CASE("KVM: opening a missing device gives an actionable error", "[kvm]") {
  auto kvm = KvmSystem::open("/dev/does-not-exist-kvm");
  REQUIRE_FALSE(kvm.has_value());
  CHECK(kvm.error().code() == ENOENT);
  CHECK(kvm.error().message().find("modprobe") != std::string::npos);
}
