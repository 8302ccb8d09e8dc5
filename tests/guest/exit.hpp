// Ending the VM, with a status the host can read back.
//
// Status byte: 0 = success, anything else = failure (values below). It is
// printed first as "probe: exit status=N method=M", then the VM is ended:
//
//   debug  QEMU isa-debug-exit (and hcnode-vmm --debug-exit) at I/O port 0xf4: write
//          the status byte. QEMU exits at once with (status << 1) | 1, so
//          status 0 -> exit code 1, status 3 -> 7. Statuses stay below 128
//          so the code fits a process exit status.
//   i8042  keyboard-controller reset (`out 0x64, 0xfe`, the pulse-reset
//          command). With -no-reboot QEMU exits with 0 whatever the
//          status: read the status from the serial line instead.
//   triple triple fault (KVM_EXIT_SHUTDOWN): with -no-reboot QEMU exits 0.
//
// Method (cmdline exit=...) picks where to start; the later ones always
// follow as fallbacks, so the guest ends on any machine and never hangs.
// Moving on prints "probe: exit_fallback method=<next>".
//   auto (default): debug -> i8042 -> triple. microvm has no i8042 but
//                   takes the debug port; pc without isa-debug-exit
//                   ignores the write to 0xf4 and resets via the i8042.
//   debug:          debug -> triple
//   i8042:          i8042 -> triple
//   triple:         triple
#pragma once

#include <cstdint>

#include "tests/guest/cmdline.hpp"

namespace probe {

inline constexpr uint8_t kStatusOk = 0;
inline constexpr uint8_t kStatusFailure = 1;        // a mode's check failed
inline constexpr uint8_t kStatusBadCmdline = 2;     // unknown mode, bad number
inline constexpr uint8_t kStatusCpuException = 3;   // a fault reached the IDT
inline constexpr uint8_t kStatusBadBootInfo = 4;    // hvm_start_info missing or bad

enum class ExitMethod : uint8_t { kAuto, kDebug, kI8042, kTriple };

// Parses "auto", "debug", "i8042" or "triple".
bool parse_exit_method(Str text, ExitMethod* out);
const char* exit_method_name(ExitMethod method);

// The method exit_vm() uses; kAuto until set.
void set_exit_method(ExitMethod method);

// Prints the exit line and ends the VM (see above). Never returns.
[[noreturn]] void exit_vm(uint8_t status);

}  // namespace probe
