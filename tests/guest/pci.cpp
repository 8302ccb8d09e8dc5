#include "tests/guest/pci.hpp"

#include "tests/guest/format.hpp"
#include "tests/guest/port_io.hpp"
#include "tests/guest/serial.hpp"

namespace probe::pci {
namespace {
constexpr uint16_t kAddressPort = 0xCF8;
constexpr uint16_t kDataPort = 0xCFC;
constexpr uint32_t kEnable = 1u << 31;
}  // namespace

uint32_t config_read32(uint8_t dev, uint8_t fn, uint8_t reg) {
    const uint32_t address = kEnable | (uint32_t{dev} << 11) | (uint32_t{fn} << 8) | (reg & 0xFC);
    io::outl(kAddressPort, address);
    return io::inl(kDataPort);
}

uint32_t enumerate_and_report() {
    uint32_t count = 0;
    for (uint8_t dev = 0; dev < 32; ++dev) {
        for (uint8_t fn = 0; fn < 8; ++fn) {
            const uint32_t id = config_read32(dev, fn, 0x00);
            if ((id & 0xFFFF) == 0xFFFF) {
                if (fn == 0) {
                    break;  // no device: skip its other functions
                }
                continue;
            }
            const uint32_t class_rev = config_read32(dev, fn, 0x08);
            const uint32_t header = (config_read32(dev, fn, 0x0C) >> 16) & 0xFF;
            const uint32_t bar0 = config_read32(dev, fn, 0x10);
            char bdf[8] = {'0', '0', ':', "0123456789abcdef"[dev >> 4], "0123456789abcdef"[dev & 15], '.',
                           static_cast<char>('0' + fn), 0};
            serial::emit(Record("pci")
                             .word("bdf", bdf)
                             .x("vendor", id & 0xFFFF)
                             .x("device", id >> 16)
                             .x("class", class_rev >> 8)
                             .x("header", header & 0x7F)
                             .x("bar0", bar0));
            ++count;
            if (fn == 0 && (header & 0x80) == 0) {
                break;  // single-function device
            }
        }
    }
    serial::emit(Record("pci_done").u("count", count));
    return count;
}

}  // namespace probe::pci
