// Probe guest: entered at CPL3 from entry.S, never returns.
//
// Sequence: zero .bss, init COM1, banner, read hvm_start_info and the
// command line, calibrate the TSC, run the selected mode, exit the VM.
// Modes live in the kModes table; a new mode is one function and one row.
// Serial output format: format.hpp. Command line grammar: cmdline.hpp.
// Exit statuses and methods: exit.hpp.
#include <cstddef>
#include <cstdint>

#include "tests/guest/blk_modes.hpp"
#include "tests/guest/cmdline.hpp"
#include "tests/guest/cpu_tables.hpp"
#include "tests/guest/cpuid.hpp"
#include "tests/guest/exit.hpp"
#include "tests/guest/format.hpp"
#include "tests/guest/pci.hpp"
#include "tests/guest/pvh.hpp"
#include "tests/guest/serial.hpp"
#include "tests/guest/tsc.hpp"
#include "tests/guest/virtio_rng.hpp"

namespace probe {
namespace {

// Everything the modes may use.
struct Context {
    Cmdline cmdline;
    tsc::Info tsc;
};

using ModeFn = uint8_t (*)(const Context&);

// Addresses the probe can dereference: the identity map covers 0..4 GiB.
constexpr uint64_t kMappedLimit = 4ull << 30;
constexpr size_t kCmdlineMax = 1024;
constexpr uint32_t kMemmapMaxEntries = 128;  // sanity bound on a guest-supplied count

constinit char g_cmdline[kCmdlineMax] = {};  // copy of the loader's command line, NUL-terminated
constinit size_t g_cmdline_len = 0;

// .bss is normally zero already (the ELF loader must clear p_memsz past
// p_filesz); clearing it here keeps the probe correct under a loader that
// doesn't. Runs before anything reads .bss. The stacks are in .stack.
void zero_bss() {
    void* dst = probe_bss_start;
    size_t n = static_cast<size_t>(probe_bss_end - probe_bss_start);
    asm volatile("rep stosb" : "+D"(dst), "+c"(n) : "a"(0) : "memory");
}

uint8_t fail(const char* reason, const char* key = nullptr, Str value = {}) {
    Record r("error");
    r.word("reason", reason);
    if (key != nullptr) {
        r.quoted(key, value.data, value.size);
    }
    serial::emit(r);
    return kStatusBadCmdline;
}

// Reads hvm_start_info (pvh.hpp) and copies the command line. Returns
// false if the structure is missing or has the wrong magic.
bool read_start_info() {
    const uint64_t paddr = probe_start_info_paddr;
    Record r("start_info");
    r.x("paddr", paddr);
    if (paddr == 0 || paddr + sizeof(pvh::HvmStartInfo) > kMappedLimit) {
        serial::emit(r.u("valid", 0));
        return false;
    }
    // SAFETY: identity-mapped guest physical memory below 4 GiB, written
    // by the loader before entry.
    const auto* info = reinterpret_cast<const volatile pvh::HvmStartInfo*>(paddr);
    r.x("magic", info->magic).u("version", info->version).x("flags", info->flags);
    if (info->magic != pvh::kStartMagic) {
        serial::emit(r.u("valid", 0));
        return false;
    }

    const uint64_t cmdline = info->cmdline_paddr;
    r.x("cmdline_paddr", cmdline).x("rsdp_paddr", info->rsdp_paddr);
    if (cmdline != 0 && cmdline < kMappedLimit - kCmdlineMax) {
        // SAFETY: as above; bounded by kCmdlineMax.
        const auto* src = reinterpret_cast<const volatile char*>(cmdline);
        size_t n = 0;
        while (n < kCmdlineMax - 1 && src[n] != '\0') {
            g_cmdline[n] = src[n];
            ++n;
        }
        g_cmdline[n] = '\0';
        g_cmdline_len = n;
    }

    if (info->version >= 1) {
        const uint64_t map = info->memmap_paddr;
        const uint32_t entries = info->memmap_entries;
        r.u("memmap_entries", entries);
        if (map != 0 && entries <= kMemmapMaxEntries &&
            map + entries * sizeof(pvh::HvmMemmapEntry) <= kMappedLimit) {
            // SAFETY: as above; the range was bounds-checked.
            const auto* e = reinterpret_cast<const volatile pvh::HvmMemmapEntry*>(map);
            uint64_t ram = 0;
            for (uint32_t i = 0; i < entries; ++i) {
                if (e[i].type == pvh::kMemmapRam) {
                    ram += e[i].size;
                }
            }
            r.u("ram_kib", ram >> 10);
        }
    }
    serial::emit(r.u("valid", 1));
    return true;
}

// Spins for `ms` milliseconds of TSC time; returns the loop count.
uint64_t spin(uint64_t ms, uint64_t khz, uint64_t* cycles) {
    const uint64_t ticks = tsc::ms_to_ticks(ms, khz);
    const uint64_t start = cpu::rdtsc();
    uint64_t now = start;
    uint64_t iterations = 0;
    while (now - start < ticks) {
        ++iterations;
        now = cpu::rdtsc();
    }
    *cycles = now - start;
    return iterations;
}

// Upper bound for ms= so ms * tsc_khz cannot overflow (10^7 ms = 2.8 h).
constexpr uint64_t kMaxSpinMs = 10'000'000;

uint8_t spin_for(const Context& ctx, uint64_t ms) {
    uint64_t cycles = 0;
    const uint64_t iterations = spin(ms, ctx.tsc.khz, &cycles);
    serial::emit(Record("spin").u("ms", ms).u("iterations", iterations).u("cycles", cycles));
    return kStatusOk;
}

// mode=spin ms=N (default 100): a timed loop at CPL3.
uint8_t mode_spin(const Context& ctx) {
    uint64_t ms = 0;
    if (!ctx.cmdline.get_u64("ms", 100, &ms) || ms > kMaxSpinMs) {
        return fail("bad-number", "ms", ctx.cmdline.get("ms"));
    }
    return spin_for(ctx, ms);
}

// mode=print n=N (default 5): N numbered lines.
uint8_t mode_print(const Context& ctx) {
    uint64_t n = 0;
    if (!ctx.cmdline.get_u64("n", 5, &n)) {
        return fail("bad-number", "n", ctx.cmdline.get("n"));
    }
    for (uint64_t i = 1; i <= n; ++i) {
        serial::emit(Record("print").u("i", i).u("n", n));
    }
    return kStatusOk;
}

// mode=fault kind=ud|pf|gp|de (default ud): raise an exception at CPL3 to
// check that it is reported. Does not return: the fault path exits.
uint8_t mode_fault(const Context& ctx) {
    const Str kind = ctx.cmdline.get("kind", Str{"ud", 2});
    serial::emit(Record("fault_inject").quoted("kind", kind.data, kind.size));
    if (kind.equals("ud")) {
        asm volatile("ud2");
    } else if (kind.equals("pf")) {
        // 4 GiB: the first address past the identity map (not present).
        asm volatile("movq (%0), %%rax" : : "r"(kMappedLimit) : "rax", "memory");
    } else if (kind.equals("gp")) {
        asm volatile("hlt");  // privileged: #GP(0) at CPL3
    } else if (kind.equals("de")) {
        asm volatile("xorl %%ecx, %%ecx; divl %%ecx" : : : "eax", "ecx", "edx");
    } else {
        return fail("unknown-fault-kind", "kind", kind);
    }
    serial::emit(Record("error").word("reason", "fault-not-raised"));
    return kStatusFailure;
}

// mode=pci: enumerate PCI bus 0 through 0xCF8/0xCFC and print every function found.
uint8_t mode_pci(const Context&) {
    pci::enumerate_and_report();
    return kStatusOk;
}

// mode=rng bytes=N (default 64, 16..4096) [force_features=0xMASK]: drive the
// virtio-rng PCI device (virtio_rng.hpp). force_features is a test hook:
// feature bits accepted even though not offered, so the device must refuse.
uint8_t mode_rng(const Context& ctx) {
    rng::Options opt;
    if (!ctx.cmdline.get_u64("bytes", rng::kDefaultBytes, &opt.bytes) ||
        opt.bytes < rng::kMinBytes || opt.bytes > rng::kMaxBytes) {
        return fail("bad-number", "bytes", ctx.cmdline.get("bytes"));
    }
    if (!ctx.cmdline.get_u64("force_features", 0, &opt.force_features)) {
        return fail("bad-number", "force_features", ctx.cmdline.get("force_features"));
    }
    opt.tsc_khz = ctx.tsc.khz;
    return rng::run(opt);
}

// virtio-blk modes (blk_modes.hpp; parameters in README.md).
uint8_t mode_write_verify(const Context& ctx) {
    return blk::mode_write_verify(ctx.cmdline, ctx.tsc.khz);
}
uint8_t mode_records(const Context& ctx) { return blk::mode_records(ctx.cmdline, ctx.tsc.khz); }
uint8_t mode_io(const Context& ctx) { return blk::mode_io(ctx.cmdline, ctx.tsc.khz); }
uint8_t mode_zeroes(const Context& ctx) { return blk::mode_zeroes(ctx.cmdline, ctx.tsc.khz); }
uint8_t mode_ro_check(const Context& ctx) { return blk::mode_ro_check(ctx.cmdline, ctx.tsc.khz); }
uint8_t mode_hostile(const Context& ctx) { return blk::mode_hostile(ctx.cmdline, ctx.tsc.khz); }

// No mode= at all: a short spin, the smoke test.
uint8_t mode_default(const Context& ctx) { return spin_for(ctx, 10); }

struct Mode {
    const char* name;
    ModeFn run;
};

constexpr Mode kModes[] = {
    {"default", mode_default},
    {"spin", mode_spin},
    {"print", mode_print},
    {"fault", mode_fault},
    {"pci", mode_pci},
    {"rng", mode_rng},
    {"write-verify", mode_write_verify},
    {"records", mode_records},
    {"io", mode_io},
    {"zeroes", mode_zeroes},
    {"ro-check", mode_ro_check},
    {"hostile", mode_hostile},
};

uint8_t run(const Context& ctx) {
    const Str mode = ctx.cmdline.get("mode", Str{"default", 7});
    for (const Mode& m : kModes) {
        if (mode.equals(m.name)) {
            serial::emit(Record("mode").word("name", m.name));
            const uint8_t status = m.run(ctx);
            if (status == kStatusOk) {
                serial::emit(Record("done").word("mode", m.name));
            }
            return status;
        }
    }
    return fail("unknown-mode", "mode", mode);
}

constinit Context g_ctx;  // static: too big to share a stack frame comfortably

}  // namespace
}  // namespace probe

// Entered from probe_user_entry (entry.S) at CPL3.
extern "C" [[noreturn]] void probe_main() {
    using namespace probe;
    const uint64_t tsc_at_main = cpu::rdtsc();
    zero_bss();
    serial::init();
    serial::write("hcnode-probe: banner v1\n");

    if (!read_start_info()) {
        exit_vm(kStatusBadBootInfo);
    }
    Context& ctx = g_ctx;
    ctx.cmdline.parse(g_cmdline, g_cmdline_len);
    serial::emit(Record("cmdline")
                     .quoted("text", g_cmdline, g_cmdline_len)
                     .u("tokens", ctx.cmdline.size())
                     .u("overflow", ctx.cmdline.overflowed() ? 1 : 0));

    ExitMethod method = ExitMethod::kAuto;
    if (ctx.cmdline.has("exit") && !parse_exit_method(ctx.cmdline.get("exit"), &method)) {
        exit_vm(fail("bad-exit-method", "exit", ctx.cmdline.get("exit")));
    }
    set_exit_method(method);

    const Str tsc_opt = ctx.cmdline.get("tsc", Str{"auto", 4});
    if (!tsc_opt.equals("auto") && !tsc_opt.equals("pit")) {
        exit_vm(fail("bad-tsc-option", "tsc", tsc_opt));
    }
    ctx.tsc = tsc::calibrate(tsc_opt.equals("pit"));
    Record t("tsc");
    t.u("tsc_khz", ctx.tsc.khz).word("source", tsc::source_name(ctx.tsc.source));
    if (ctx.tsc.source == tsc::Source::kPit) {
        t.u("pit_ms", tsc::kPitWindowMs).u("pit_samples", ctx.tsc.pit_samples);
    }
    serial::emit(t);
    // Raw TSC values: at the PVH entry point, at the first C++ instruction
    // (CPL3) and now (after banner, start_info and calibration: ~15 ms of
    // serial output here). On KVM with VMX/SVM the guest TSC starts near 0
    // at vCPU reset; under PVM it reads the host's TSC (measured), which
    // lets a host tool relate guest events to its own clock.
    serial::emit(Record("boot")
                     .u("tsc_entry", probe_tsc_entry)
                     .u("tsc_main", tsc_at_main)
                     .u("tsc_ready", cpu::rdtsc()));

    exit_vm(run(ctx));
}
