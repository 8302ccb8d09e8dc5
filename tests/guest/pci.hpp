// PCI enumeration through configuration mechanism #1 (ports 0xCF8 address / 0xCFC data; PCI
// Local Bus spec 3.0, 3.2.2.3.2), at CPL3 through the TSS I/O bitmap. Bus 0 only: hcnode and
// the QEMU machines the probe runs on put every device there.
#pragma once

#include <cstdint>

namespace probe::pci {

// Reads dword `reg` (a multiple of 4) of bus 0, device dev, function fn.
uint32_t config_read32(uint8_t dev, uint8_t fn, uint8_t reg);

// Prints one line per function found and a summary:
//   probe: pci bdf=00:03.0 vendor=0x1af4 device=0x1044 class=0xff0000 header=0x0 bar0=0x...
//   probe: pci_done count=N
// Returns the number of functions found.
uint32_t enumerate_and_report();

}  // namespace probe::pci
