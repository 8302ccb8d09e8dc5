// Fixed-byte-order loads and stores of integers in byte buffers.
//
// The formats hcnode reads and writes fix their byte order whatever the host's: virtio fields
// are little-endian (virtio 1.2 1.4, "le16/le32/le64"), so are PCI configuration space (PCI
// Local Bus 3.0 6.1), the MSI-X table (6.8.2) and the x86 Linux boot header
// (Documentation/arch/x86/boot.rst); qcow2's header and tables are big-endian (QEMU
// docs/interop/qcow2.txt: "all numbers ... are stored in Big Endian byte order").
//
// Every access goes through memcpy: the address need not be aligned for the type and no object
// is reinterpreted (no undefined behaviour), and compilers turn it into one load or store plus,
// only where the host's order differs, a byte swap.
//
// Pointer forms: p points at the first byte and the caller has checked that all of them lie
// inside its buffer. Span forms of any width (load_le/store_le) are for registers a guest may
// access 1, 2, 4 or 8 bytes at a time: the access's bytes are the low-order bytes of the value.
#pragma once

#include <algorithm>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace hcnode {
namespace endian_detail {

template <std::unsigned_integral T, std::endian Order>
inline T load(const void* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  if constexpr (std::endian::native != Order) {
    v = std::byteswap(v);
  }
  return v;
}

template <std::unsigned_integral T, std::endian Order>
inline void store(void* p, T v) {
  if constexpr (std::endian::native != Order) {
    v = std::byteswap(v);
  }
  std::memcpy(p, &v, sizeof v);
}

}  // namespace endian_detail

inline uint16_t load_le16(const void* p) { return endian_detail::load<uint16_t, std::endian::little>(p); }
inline uint32_t load_le32(const void* p) { return endian_detail::load<uint32_t, std::endian::little>(p); }
inline uint64_t load_le64(const void* p) { return endian_detail::load<uint64_t, std::endian::little>(p); }
inline void store_le16(void* p, uint16_t v) { endian_detail::store<uint16_t, std::endian::little>(p, v); }
inline void store_le32(void* p, uint32_t v) { endian_detail::store<uint32_t, std::endian::little>(p, v); }
inline void store_le64(void* p, uint64_t v) { endian_detail::store<uint64_t, std::endian::little>(p, v); }

inline uint16_t load_be16(const void* p) { return endian_detail::load<uint16_t, std::endian::big>(p); }
inline uint32_t load_be32(const void* p) { return endian_detail::load<uint32_t, std::endian::big>(p); }
inline uint64_t load_be64(const void* p) { return endian_detail::load<uint64_t, std::endian::big>(p); }
inline void store_be16(void* p, uint16_t v) { endian_detail::store<uint16_t, std::endian::big>(p, v); }
inline void store_be32(void* p, uint32_t v) { endian_detail::store<uint32_t, std::endian::big>(p, v); }
inline void store_be64(void* p, uint64_t v) { endian_detail::store<uint64_t, std::endian::big>(p, v); }

// The little-endian number in the first min(bytes.size(), 8) bytes (zero-extended); bytes past
// the eighth are not read.
inline uint64_t load_le(std::span<const uint8_t> bytes) {
  uint8_t wide[8] = {};
  if (const size_t n = std::min<size_t>(bytes.size(), sizeof wide); n != 0) {
    std::memcpy(wide, bytes.data(), n);
  }
  return load_le64(wide);
}

// Writes the low-order min(bytes.size(), 8) bytes of v, little-endian; bytes past the eighth
// are left as they are.
inline void store_le(std::span<uint8_t> bytes, uint64_t v) {
  uint8_t wide[8];
  store_le64(wide, v);
  if (const size_t n = std::min<size_t>(bytes.size(), sizeof wide); n != 0) {
    std::memcpy(bytes.data(), wide, n);
  }
}

}  // namespace hcnode
