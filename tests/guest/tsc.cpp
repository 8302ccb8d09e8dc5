#include "tests/guest/tsc.hpp"

#include "tests/guest/cpuid.hpp"
#include "tests/guest/port_io.hpp"

namespace probe::tsc {
namespace {

constexpr uint32_t kCpuidHypervisorPresent = 1u << 31;  // leaf 1, ECX
constexpr uint32_t kHypervisorBase = 0x40000000;
constexpr uint32_t kHypervisorTiming = 0x40000010;

// PIT (Intel 8254 datasheet). Channel 0 rather than the usual channel 2:
// channel 2 is gated through port 0x61, which microvm does not have,
// while channel 0 always counts. Its IRQ0 never reaches the probe (IF = 0).
constexpr uint64_t kPitHz = 1193182;
constexpr uint16_t kPitChannel0 = 0x40;
constexpr uint16_t kPitCommand = 0x43;
// Channel 0, access lobyte/hibyte, mode 2 (rate generator), binary. With
// a count of 0 (= 65536) it counts down continuously, wrapping every 55 ms.
constexpr uint8_t kPitCh0Mode2 = 0x34;
constexpr uint8_t kPitCh0Latch = 0x00;  // counter-latch command for channel 0
// A sample costs 3 port accesses (~150 us from CPL3): ~130 samples per
// 20 ms window. Bounds: a counter that has not moved after kPitDeadSamples
// (~10 ms) is no PIT (absent ports read 0xff); kPitMaxSamples caps the
// wait for a narrow end sample.
constexpr uint32_t kPitDeadSamples = 64;
constexpr uint32_t kPitMaxSamples = 20000;

struct PitSample {
    uint64_t tsc;    // when the count was latched (midpoint of the latch)
    uint64_t width;  // TSC ticks between the readings around the latch
    uint16_t count;
};

// The latch happens somewhere inside the `out`, so the TSC is taken on
// both sides of it and the midpoint kept: that halves the uncertainty of
// a ~40 us port exit.
PitSample pit_sample() {
    const uint64_t before = cpu::rdtsc();
    io::outb(kPitCommand, kPitCh0Latch);
    const uint64_t after = cpu::rdtsc();
    const uint8_t lo = io::inb(kPitChannel0);
    const uint8_t hi = io::inb(kPitChannel0);
    return {before + (after - before) / 2, after - before, static_cast<uint16_t>(lo | (hi << 8))};
}

uint64_t from_hypervisor_leaf() {
    if ((cpu::cpuid(1).ecx & kCpuidHypervisorPresent) == 0) {
        return 0;
    }
    if (cpu::cpuid(kHypervisorBase).eax < kHypervisorTiming) {
        return 0;
    }
    return cpu::cpuid(kHypervisorTiming).eax;
}

uint64_t from_leaf_15() {
    if (cpu::cpuid(0).eax < 0x15) {
        return 0;
    }
    const cpu::CpuidRegs r = cpu::cpuid(0x15);
    if (r.eax == 0 || r.ebx == 0 || r.ecx == 0) {
        return 0;  // ratio or crystal frequency not enumerated
    }
    return static_cast<uint64_t>(r.ecx) * r.ebx / r.eax / 1000;
}

uint64_t from_leaf_16() {
    if (cpu::cpuid(0).eax < 0x16) {
        return 0;
    }
    return static_cast<uint64_t>(cpu::cpuid(0x16).eax & 0xffff) * 1000;
}

// A sample is trusted as an end point only if its latch bracket is at most
// twice the narrowest seen: a wide one means the vCPU was descheduled
// around the latch (2 shared cores here), which would skew the midpoint
// by milliseconds. Counts are tracked exactly, so waiting longer is free.
bool narrow(const PitSample& s, uint64_t min_width) { return s.width <= 2 * min_width; }

uint64_t from_pit(uint32_t* samples_out) {
    const uint64_t window = kPitHz * kPitWindowMs / 1000;
    io::outb(kPitCommand, kPitCh0Mode2);
    io::outb(kPitChannel0, 0);
    io::outb(kPitChannel0, 0);

    // Start: the narrower of two samples (the first may pay for a cold
    // path in the VMM).
    PitSample first = pit_sample();
    PitSample second = pit_sample();
    uint32_t samples = 2;
    uint64_t elapsed = static_cast<uint16_t>(first.count - second.count);
    if (second.width <= first.width) {
        first = second;
        elapsed = 0;
    }
    uint64_t min_width = first.width;
    PitSample last = second;
    while ((elapsed < window || !narrow(last, min_width)) && samples < kPitMaxSamples) {
        const PitSample s = pit_sample();
        ++samples;
        // Down-counter: ticks passed = old - new, modulo the 65536 period
        // (a sample takes far less than one period).
        elapsed += static_cast<uint16_t>(last.count - s.count);
        min_width = s.width < min_width ? s.width : min_width;
        last = s;
        if (elapsed == 0 && samples >= kPitDeadSamples) {
            break;
        }
    }
    *samples_out = samples;
    // A missing PIT reads 0xffff forever: elapsed stays 0.
    if (elapsed < window || !narrow(last, min_width)) {
        return 0;
    }
    return (last.tsc - first.tsc) * kPitHz / (elapsed * 1000);
}

}  // namespace

Info calibrate(bool force_pit) {
    Info info;
    if (!force_pit) {
        if ((info.khz = from_hypervisor_leaf()) != 0) {
            info.source = Source::kCpuidHypervisor;
            return info;
        }
        if ((info.khz = from_leaf_15()) != 0) {
            info.source = Source::kCpuid15;
            return info;
        }
    }
    if ((info.khz = from_pit(&info.pit_samples)) != 0) {
        info.source = Source::kPit;
        return info;
    }
    if ((info.khz = from_leaf_16()) != 0) {
        info.source = Source::kCpuid16;
        return info;
    }
    info.khz = 1000000;
    info.source = Source::kGuess;
    return info;
}

const char* source_name(Source source) {
    switch (source) {
    case Source::kCpuidHypervisor: return "cpuid-0x40000010";
    case Source::kCpuid15: return "cpuid-0x15";
    case Source::kPit: return "pit";
    case Source::kCpuid16: return "cpuid-0x16";
    case Source::kGuess: return "guess";
    }
    return "?";
}

}  // namespace probe::tsc
