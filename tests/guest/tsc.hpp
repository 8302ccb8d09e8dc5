// TSC frequency: where it comes from and the value.
//
// Sources, tried in this order (the first that gives a value wins):
//   cpuid-0x40000010  hypervisor timing leaf (VMware convention, QEMU/KVM
//                     provide it): EAX = TSC kHz. Exact.
//   cpuid-0x15        Intel TSC/crystal ratio with a known crystal:
//                     ECX * EBX / EAX Hz (SDM Vol. 2A, CPUID leaf 15H). Exact.
//   pit               measured against PIT channel 0 (1.193182 MHz) over
//                     kPitWindowMs, reading latched counts (tsc.cpp says
//                     why not channel 2). A port access from CPL3 costs
//                     ~40-65 us here; bracketing each latch with RDTSC
//                     keeps the error near 0.1% for a 20 ms window.
//   cpuid-0x16        processor base frequency in MHz (SDM Vol. 2A, leaf
//                     16H): an approximation, used only if the PIT fails.
//   guess             1 GHz, so that timed loops still end.
#pragma once

#include <cstdint>

namespace probe::tsc {

inline constexpr uint32_t kPitWindowMs = 20;

enum class Source : uint8_t { kCpuidHypervisor, kCpuid15, kPit, kCpuid16, kGuess };

struct Info {
    uint64_t khz = 0;
    Source source = Source::kGuess;
    uint32_t pit_samples = 0;  // latched PIT reads during a PIT calibration
};

// force_pit skips the CPUID sources (cmdline tsc=pit), to exercise the
// PIT path on machines whose CPUID has the answer.
Info calibrate(bool force_pit);

const char* source_name(Source source);

// TSC ticks in `ms` milliseconds at `khz`.
inline uint64_t ms_to_ticks(uint64_t ms, uint64_t khz) { return ms * khz; }

}  // namespace probe::tsc
