// C-layout headers of the KVM structs that end in a flexible array.
//
// Why: linux-libc-dev declares those arrays with __DECLARE_FLEX_ARRAY, which wraps them in an
// anonymous struct holding an empty struct. An empty struct is 0 bytes in C but 1 byte in C++,
// so in C++ `entries` moves (kvm_cpuid2: offset 12 instead of 8; kvm_msrs and kvm_irq_routing:
// 16 instead of 8) and sizeof changes — and with it the ioctl numbers, which encode sizeof.
// The kernel then sees ENOTTY or misreads the buffer. hcnode builds these buffers from the
// headers below (8 bytes, entries right after) and uses ioctl numbers computed from them,
// which match the C values (checked in tests/unit/compute/kvm_abi_test.cpp).
#pragma once

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace hcnode::kvm {

struct CpuidHeader {  // struct kvm_cpuid2 without entries
  uint32_t nent;
  uint32_t padding;
};
struct MsrsHeader {  // struct kvm_msrs without entries
  uint32_t nmsrs;
  uint32_t pad;
};
struct IrqRoutingHeader {  // struct kvm_irq_routing without entries
  uint32_t nr;
  uint32_t flags;
};
static_assert(sizeof(CpuidHeader) == 8 && sizeof(MsrsHeader) == 8 && sizeof(IrqRoutingHeader) == 8);

inline constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, CpuidHeader);
inline constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, CpuidHeader);
inline constexpr unsigned long kGetMsrs = _IOWR(KVMIO, 0x88, MsrsHeader);
inline constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, MsrsHeader);
inline constexpr unsigned long kSetGsiRouting = _IOW(KVMIO, 0x6a, IrqRoutingHeader);

// A header followed by n entries, laid out as the kernel's C structs (8-byte aligned storage).
template <typename Header, typename Entry>
class FlexBuffer {
 public:
  explicit FlexBuffer(size_t n) : words_((sizeof(Header) + n * sizeof(Entry) + 7) / 8, 0) {}
  void* data() { return words_.data(); }
  // SAFETY: words_ is 8-byte aligned and sized for the header plus n entries; Header and Entry
  // are C structs with alignment <= 8 and the kernel's layout.
  Header* header() { return reinterpret_cast<Header*>(words_.data()); }
  Entry* entries() { return reinterpret_cast<Entry*>(reinterpret_cast<uint8_t*>(words_.data()) + sizeof(Header)); }

 private:
  std::vector<uint64_t> words_;
};

}  // namespace hcnode::kvm
