// VmConfig: everything hcnode-vmm needs to build a VM, from flags or a JSON file (--config).
//
// JSON form (every key optional except kernel; unknown keys are refused):
//   {"memory": "128M", "vcpus": 2, "kernel": "/path/vmlinux", "initrd": "/path/initrd",
//    "cmdline": "console=ttyS0", "serial": "stdout", "control_socket": "/run/vm1.sock",
//    "log_level": "info", "log_file": "/var/log/vm1.log", "rng": true, "pv_hypercalls": "auto",
//    "debug_exit": false, "disks": [{"uri": "rbd:rbd/vm1", "serial": "vm1-root"}]}
// The same names are the long flags (--memory, --vcpus, ..., --debug-exit, --disk once per
// disk); flags override the file (--disk flags replace the file's disks; --debug-exit can only
// turn the port on).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "base/result.hpp"
#include "compute/disk_config.hpp"

namespace hcnode::compute {

enum class PvHypercalls { kAuto, kOn, kOff };

struct VmConfig {
  uint64_t memory_bytes = 128ull << 20;
  uint32_t vcpus = 1;
  std::string kernel;
  std::string initrd;  // empty = none
  std::string cmdline;
  std::string serial = "stdout";
  std::string control_socket;  // empty = no control socket
  std::string log_level = "info";
  std::string log_file;  // empty = stderr
  bool rng = true;       // a virtio-rng device
  PvHypercalls pv_hypercalls = PvHypercalls::kAuto;
  // The debug-exit port (I/O 0xF4, devices/legacy/debug_exit.hpp): a guest writing v there ends
  // the VM with exit status 0 or 64+v. For test and benchmark guests only, so off by default:
  // otherwise any guest chooses the VMM's exit status (exit_status.hpp).
  bool debug_exit = false;
  std::vector<DiskConfig> disks;  // virtio-blk disks, in PCI order (blk0, blk1, ...)

  nlohmann::json to_json() const;
};

// Applies the keys of a JSON object onto config (so a file can be overridden by flags).
Status apply_json(const nlohmann::json& json, VmConfig& config);
// Reads and applies a JSON config file.
Status apply_json_file(const std::string& path, VmConfig& config);

inline constexpr uint64_t kMinMemory = 16ull << 20;
inline constexpr uint32_t kMaxVcpus = 254;
inline constexpr size_t kMaxDisks = 16;  // PCI slots on bus 0 are shared with other devices  // APIC ids < 255 in the MP table

// Checks the values that can be checked without KVM, in two parts that fail with different exit
// statuses (exit_status.hpp): the settings — memory a multiple of 4 KiB and at least kMinMemory,
// 1..kMaxVcpus vCPUs, a kernel named, known log level and serial target syntax, every disk
// well-formed (validate_disk), at most kMaxDisks — and the boot
// files — kernel and initrd readable regular files. The message names the field and says what
// is expected. validate() runs both.
Status validate_settings(const VmConfig& config);
Status validate_boot_files(const VmConfig& config);
Status validate(const VmConfig& config);

Result<PvHypercalls> parse_pv_hypercalls(const std::string& text);

}  // namespace hcnode::compute
