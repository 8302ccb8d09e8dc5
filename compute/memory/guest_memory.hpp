// GuestMemory: the only way hcnode code touches guest physical memory.
//
// Everything that parses guest-controlled data (virtio rings, boot structures read back, device
// DMA) goes through this interface, so that it can be unit-tested and fuzzed against a fake
// memory (tests/fakes/fake_guest_memory.hpp) and so that every access is bounds-checked: a guest
// address or length that leaves guest RAM is an error (EFAULT), never a host memory access.
//
// Thread-safety: the mapping is fixed for the life of the VM (no hot-plug of RAM yet), so all
// methods may be called from any thread. The *contents* are shared with the running guest:
// callers that read data the guest may change concurrently must copy once and validate the
// copy (never read the same guest field twice and trust both reads to agree).
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

#include "base/result.hpp"

namespace hcnode::compute {

class GuestMemory {
 public:
  virtual ~GuestMemory() = default;

  // Host view of [gpa, gpa + len). Fails with EFAULT unless the whole range lies inside one
  // RAM region (ranges crossing the 32-bit MMIO hole or a region end are refused). len 0 is
  // valid anywhere inside or at the end of a region.
  // SAFETY: the returned span aliases guest RAM; the guest may write it at any time.
  virtual Result<std::span<uint8_t>> slice(uint64_t gpa, uint64_t len) const = 0;

  // Total bytes of RAM (excluding holes).
  virtual uint64_t ram_size() const = 0;

  Status read(uint64_t gpa, std::span<uint8_t> out) const {
    auto s = HCN_TRY(slice(gpa, out.size()));
    std::memcpy(out.data(), s.data(), out.size());
    return {};
  }

  Status write(uint64_t gpa, std::span<const uint8_t> in) const {
    auto s = HCN_TRY(slice(gpa, in.size()));
    std::memcpy(s.data(), in.data(), in.size());
    return {};
  }

  // Copies a plain struct out of guest memory (x86 is little-endian like every virtio field).
  template <typename T>
  Result<T> read_obj(uint64_t gpa) const {
    static_assert(std::is_trivially_copyable_v<T>);
    T value;
    HCN_TRY_STATUS(read(gpa, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&value), sizeof(T))));
    return value;
  }

  template <typename T>
  Status write_obj(uint64_t gpa, const T& value) const {
    static_assert(std::is_trivially_copyable_v<T>);
    return write(gpa, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&value), sizeof(T)));
  }

 protected:
  // Shared bounds check for implementations: [gpa, gpa+len) inside [base, base+size)?
  static bool range_inside(uint64_t gpa, uint64_t len, uint64_t base, uint64_t size) {
    if (gpa < base) {
      return false;
    }
    const uint64_t off = gpa - base;
    return off <= size && len <= size - off;
  }
};

}  // namespace hcnode::compute
