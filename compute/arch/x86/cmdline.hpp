// The kernel command line in guest memory: a NUL-terminated string at kCmdlineAddr, read by the
// kernel through cmd_line_ptr (Linux boot protocol) or cmdline_paddr (PVH).
#pragma once

#include <cstdint>
#include <string_view>

#include "base/result.hpp"
#include "compute/memory/guest_memory.hpp"

namespace hcnode::compute::x86 {

// Writes cmdline plus its NUL at addr. max_len is the longest command line the kernel accepts,
// without the NUL (setup_header.cmdline_size for bzImage). E2BIG when longer, EINVAL when the
// string holds a NUL (the kernel would silently drop what follows).
Status write_cmdline(const GuestMemory& mem, uint64_t addr, std::string_view cmdline, uint64_t max_len);

}  // namespace hcnode::compute::x86
