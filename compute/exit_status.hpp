// Why hcnode-vmm ended: its process exit status. Stable — the cluster agent and tests read it.
//
//   0       the guest ended the VM: i8042 reset / KVM shutdown or reset event (guest poweroff or
//           reboot, the VMM does not reboot), or debug-exit port written with 0 (--debug-exit)
//   1       the VMM failed while running (an ioctl failed, a thread died)
//   2       invalid command line or configuration
//   3       the kernel or initrd could not be loaded (missing, unreadable, not bzImage/ELF, too big)
//   4       /dev/kvm missing, not accessible, or lacking a required capability
//   5       the guest crashed: triple fault, KVM emulation failure, failed VM entry
//   6       stopped by a `shutdown` request on the control socket
//   7       stopped by SIGTERM or SIGINT
//   8       a disk could not be opened (no such image or file, no access, storage unreachable)
//   64+v    debug-exit port written with a value v in 1..63 (larger values report 127); only
//           with --debug-exit ("debug_exit": true), which test and benchmark guests use. Without
//           it the port does not exist: a guest cannot choose any status but 0 (by ending
//           itself) or 5 (by crashing).
#pragma once

#include <cstdint>

namespace hcnode::compute {

inline constexpr int kExitGuestEnded = 0;
inline constexpr int kExitVmmFailure = 1;
inline constexpr int kExitBadConfig = 2;
inline constexpr int kExitBadKernel = 3;
inline constexpr int kExitNoKvm = 4;
inline constexpr int kExitGuestCrashed = 5;
inline constexpr int kExitShutdownRequest = 6;
inline constexpr int kExitSignal = 7;
inline constexpr int kExitDiskUnavailable = 8;
inline constexpr int kExitDebugBase = 64;

inline int debug_exit_status(uint8_t value) {
  if (value == 0) {
    return kExitGuestEnded;
  }
  return kExitDebugBase + (value < 64 ? value : 63);
}

}  // namespace hcnode::compute
