// PCI enumeration through configuration mechanism #1 (ports 0xCF8 address / 0xCFC data; PCI
// Local Bus spec 3.0, 3.2.2.3.2), at CPL3 through the TSS I/O bitmap. Bus 0 only: hcnode and
// the QEMU machines the probe runs on put every device there.
#pragma once

#include <cstdint>

namespace probe::pci {

// Configuration accesses to bus 0, device dev, function fn. `reg` is
// aligned to the access width; a 16-bit access goes through data port
// 0xCFC + (reg & 2), so it touches only its own two bytes (command and
// status are separate registers sharing one dword).
uint32_t config_read32(uint8_t dev, uint8_t fn, uint8_t reg);
uint16_t config_read16(uint8_t dev, uint8_t fn, uint8_t reg);
void config_write32(uint8_t dev, uint8_t fn, uint8_t reg, uint32_t value);
void config_write16(uint8_t dev, uint8_t fn, uint8_t reg, uint16_t value);

// Configuration accesses made so far (each is two port accesses, ~40-65 us
// each from CPL3 here).
uint32_t config_accesses();

struct Function {
    uint8_t dev = 0;
    uint8_t fn = 0;
};

// The first function on bus 0 with this vendor and device id, if any.
bool find(uint16_t vendor, uint16_t device, Function* out);

// The index-th (0-based) function on bus 0, in bus order, whose vendor is
// `vendor` and whose device id is device_a or device_b (0: unused); sets
// *matched to the id it has.
bool find_nth(uint16_t vendor, uint16_t device_a, uint16_t device_b, uint32_t index,
              Function* out, uint16_t* matched);

// Prints one line per function found and a summary:
//   probe: pci bdf=00:03.0 vendor=0x1af4 device=0x1044 class=0xff0000 header=0x0 bar0=0x...
//   probe: pci_done count=N
// Returns the number of functions found.
uint32_t enumerate_and_report();

}  // namespace probe::pci
