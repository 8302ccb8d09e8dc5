#include "compute/kvm/kvm_abi.hpp"

#include <catch2/catch.hpp>

using namespace hcnode::kvm;

// The ioctl numbers a C program gets from <linux/kvm.h> on x86-64 (sizeof of the C structs is
// 8): if these differ, the kernel answers ENOTTY — which is how the C++ layout problem showed.
TEST_CASE("kvm ABI: flexible-array ioctl numbers match the kernel's C values", "[compute][kvm]") {
  CHECK(kGetSupportedCpuid == 0xc008ae05UL);
  CHECK(kSetCpuid2 == 0x4008ae90UL);
  CHECK(kGetMsrs == 0xc008ae88UL);
  CHECK(kSetMsrs == 0x4008ae89UL);
  CHECK(kSetGsiRouting == 0x4008ae6aUL);
}

TEST_CASE("kvm ABI: FlexBuffer puts entries right after the 8-byte header", "[compute][kvm]") {
  FlexBuffer<MsrsHeader, kvm_msr_entry> buf(3);
  auto* base = static_cast<uint8_t*>(buf.data());
  CHECK(reinterpret_cast<uint8_t*>(buf.entries()) - base == 8);
  CHECK(reinterpret_cast<uintptr_t>(buf.data()) % 8 == 0);
  buf.entries()[2].data = 0x1122334455667788ull;  // last entry is inside the buffer (ASan)
  CHECK(buf.entries()[2].data == 0x1122334455667788ull);
}
