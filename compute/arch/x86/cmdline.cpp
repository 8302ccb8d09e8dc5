#include "compute/arch/x86/cmdline.hpp"

#include <cstring>
#include <string>

namespace hcnode::compute::x86 {

Status write_cmdline(const GuestMemory& mem, uint64_t addr, std::string_view cmdline, uint64_t max_len) {
  if (cmdline.size() > max_len) {
    return fail(E2BIG, "kernel command line is " + std::to_string(cmdline.size()) +
                           " bytes; this kernel accepts at most " + std::to_string(max_len));
  }
  if (cmdline.find('\0') != std::string_view::npos) {
    return fail(EINVAL, "kernel command line contains a NUL byte");
  }
  // SAFETY: host view of [addr, addr + len + 1), bounds checked by slice().
  std::span<uint8_t> dst = HCN_TRY(mem.slice(addr, cmdline.size() + 1));
  std::memcpy(dst.data(), cmdline.data(), cmdline.size());
  dst[cmdline.size()] = 0;
  return {};
}

}  // namespace hcnode::compute::x86
