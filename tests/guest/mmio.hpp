// Memory-mapped I/O for CPL3 code: each accessor is exactly one `mov` of
// the field's width, so a device sees the access width it expects (virtio
// 1.2 §4.1.3.1: 8/16/32-bit fields accessed with 8/16/32-bit accesses).
// Inline asm rather than a volatile dereference makes the width and the
// single instruction explicit (KVM's emulator decodes that instruction).
//
// Cost here: ~40 us per access from CPL3 (a VM exit to the VMM), so every
// access is counted (counters()) and callers keep them few.
//
// Pure enough for the host unit test: on the host the "MMIO" is ordinary
// memory (virtqueue notify in host_test.cpp).
#pragma once

#include <cstdint>

namespace probe::mmio {

struct Counters {
    uint32_t reads = 0;
    uint32_t writes = 0;
};

inline constinit Counters g_counters{};

inline const Counters& counters() { return g_counters; }

inline uint8_t read8(uintptr_t addr) {
    uint8_t v;
    asm volatile("movb (%1), %0" : "=q"(v) : "r"(addr) : "memory");
    ++g_counters.reads;
    return v;
}
inline uint16_t read16(uintptr_t addr) {
    uint16_t v;
    asm volatile("movw (%1), %0" : "=r"(v) : "r"(addr) : "memory");
    ++g_counters.reads;
    return v;
}
inline uint32_t read32(uintptr_t addr) {
    uint32_t v;
    asm volatile("movl (%1), %0" : "=r"(v) : "r"(addr) : "memory");
    ++g_counters.reads;
    return v;
}
inline void write8(uintptr_t addr, uint8_t v) {
    asm volatile("movb %0, (%1)" : : "q"(v), "r"(addr) : "memory");
    ++g_counters.writes;
}
inline void write16(uintptr_t addr, uint16_t v) {
    asm volatile("movw %0, (%1)" : : "r"(v), "r"(addr) : "memory");
    ++g_counters.writes;
}
inline void write32(uintptr_t addr, uint32_t v) {
    asm volatile("movl %0, (%1)" : : "r"(v), "r"(addr) : "memory");
    ++g_counters.writes;
}

}  // namespace probe::mmio
