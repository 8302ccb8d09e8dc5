// CPUID and RDTSC for CPL3 code (both are allowed at CPL3: CR4.TSD = 0).
#pragma once

#include <cstdint>

namespace probe::cpu {

struct CpuidRegs {
    uint32_t eax, ebx, ecx, edx;
};

inline CpuidRegs cpuid(uint32_t leaf, uint32_t subleaf = 0) {
    CpuidRegs r;
    asm volatile("cpuid" : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx)
                 : "a"(leaf), "c"(subleaf));
    return r;
}

// Not serializing: fine for the millisecond-scale intervals measured here.
inline uint64_t rdtsc() {
    uint32_t lo, hi;
    asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (static_cast<uint64_t>(hi) << 32) | lo;
}

inline void pause() { asm volatile("pause"); }

}  // namespace probe::cpu
