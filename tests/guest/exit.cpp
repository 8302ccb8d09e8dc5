#include "tests/guest/exit.hpp"

#include "tests/guest/cpu_tables.hpp"
#include "tests/guest/cpuid.hpp"
#include "tests/guest/port_io.hpp"
#include "tests/guest/serial.hpp"

namespace probe {
namespace {

constexpr uint16_t kDebugExitPort = 0xf4;   // QEMU -device isa-debug-exit,iobase=0xf4
constexpr uint16_t kI8042Command = 0x64;
constexpr uint8_t kI8042PulseReset = 0xfe;  // pulse output line 0 (CPU reset)
// QEMU handles the reset request on its main loop, after this vCPU has run
// on for a while: give it ~0.1-0.3 s (TSC ticks at 1-3 GHz) before the
// triple-fault fallback so the exit really comes from the i8042.
constexpr uint64_t kI8042GraceTicks = 300'000'000;

constinit ExitMethod g_method = ExitMethod::kAuto;

}  // namespace

bool parse_exit_method(Str text, ExitMethod* out) {
    if (text.equals("auto")) {
        *out = ExitMethod::kAuto;
    } else if (text.equals("debug")) {
        *out = ExitMethod::kDebug;
    } else if (text.equals("i8042")) {
        *out = ExitMethod::kI8042;
    } else if (text.equals("triple")) {
        *out = ExitMethod::kTriple;
    } else {
        return false;
    }
    return true;
}

const char* exit_method_name(ExitMethod method) {
    switch (method) {
    case ExitMethod::kAuto: return "auto";
    case ExitMethod::kDebug: return "debug";
    case ExitMethod::kI8042: return "i8042";
    case ExitMethod::kTriple: return "triple";
    }
    return "?";
}

void set_exit_method(ExitMethod method) { g_method = method; }

void exit_vm(uint8_t status) {
    const ExitMethod method = g_method;
    serial::emit(Record("exit").u("status", status).word("method", exit_method_name(method)));
    // Each "exit_fallback" line says the previous method did not end the VM
    // (e.g. no isa-debug-exit device on pc), so tests can tell which did.
    if (method == ExitMethod::kAuto || method == ExitMethod::kDebug) {
        io::outb(kDebugExitPort, status);
        serial::emit(Record("exit_fallback").word("method", method == ExitMethod::kAuto ? "i8042" : "triple"));
    }
    if (method == ExitMethod::kAuto || method == ExitMethod::kI8042) {
        io::outb(kI8042Command, kI8042PulseReset);
        const uint64_t start = cpu::rdtsc();
        while (cpu::rdtsc() - start < kI8042GraceTicks) {
            cpu::pause();
        }
        serial::emit(Record("exit_fallback").word("method", "triple"));
    }
    cpu::triple_fault();
}

}  // namespace probe
