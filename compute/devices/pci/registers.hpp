// PCI configuration header offsets and bits for a type-0 function (PCI Local Bus 3.0, 6.1–6.2),
// and the capability ids hcnode uses. Values only; the behaviour lives in config_space.hpp.
#pragma once

#include <cstdint>

namespace hcnode::compute::pci {

// Conventional configuration space (PCI Local Bus 3.0, 6.1). The 4 KiB PCIe extended space is
// not implemented: the legacy 0xCF8/0xCFC mechanism cannot reach it anyway.
inline constexpr uint16_t kConfigSpaceSize = 256;

// Header registers (offsets in bytes).
inline constexpr uint16_t kRegVendorId = 0x00;
inline constexpr uint16_t kRegDeviceId = 0x02;
inline constexpr uint16_t kRegCommand = 0x04;
inline constexpr uint16_t kRegStatus = 0x06;
inline constexpr uint16_t kRegRevisionId = 0x08;
inline constexpr uint16_t kRegClassCode = 0x09;  // 3 bytes: prog-if, subclass, base class
inline constexpr uint16_t kRegCacheLineSize = 0x0C;
inline constexpr uint16_t kRegHeaderType = 0x0E;
inline constexpr uint16_t kRegBar0 = 0x10;
inline constexpr uint16_t kRegSubsystemVendorId = 0x2C;
inline constexpr uint16_t kRegSubsystemId = 0x2E;
inline constexpr uint16_t kRegCapabilitiesPointer = 0x34;
inline constexpr uint16_t kRegInterruptLine = 0x3C;
inline constexpr uint16_t kRegInterruptPin = 0x3D;

inline constexpr unsigned kBarCount = 6;
// Capabilities live after the 64-byte header (6.7: "the pointer ... must point into the
// device-specific region, 40h..FFh") and are DWORD aligned.
inline constexpr uint16_t kCapabilitiesStart = 0x40;

// Command register bits (6.2.2).
inline constexpr uint16_t kCommandIoSpace = 1u << 0;
inline constexpr uint16_t kCommandMemorySpace = 1u << 1;
inline constexpr uint16_t kCommandBusMaster = 1u << 2;
inline constexpr uint16_t kCommandParityError = 1u << 6;
inline constexpr uint16_t kCommandSerr = 1u << 8;
inline constexpr uint16_t kCommandInterruptDisable = 1u << 10;

// Status register bits (6.2.3). The error bits are "write 1 to clear".
inline constexpr uint16_t kStatusCapabilitiesList = 1u << 4;
inline constexpr uint16_t kStatusW1cMask = (1u << 8) | (1u << 11) | (1u << 12) | (1u << 13) |
                                           (1u << 14) | (1u << 15);

// Memory BAR low bits (6.2.5.1): bit 0 = 0 memory space, bits 2:1 = type, bit 3 = prefetchable.
inline constexpr uint32_t kBarMemType64 = 0x2u << 1;
inline constexpr uint32_t kBarPrefetchable = 1u << 3;
inline constexpr uint32_t kBarMemFlagsMask = 0xFu;

// Capability ids (PCI Code and ID Assignment).
inline constexpr uint8_t kCapIdVendorSpecific = 0x09;
inline constexpr uint8_t kCapIdMsix = 0x11;

// What a read of an absent function returns: vendor id 0xFFFF is "no device" (6.2.1).
inline constexpr uint32_t kAbsentDword = 0xFFFF'FFFF;

}  // namespace hcnode::compute::pci
