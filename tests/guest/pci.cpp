#include "tests/guest/pci.hpp"

#include "tests/guest/format.hpp"
#include "tests/guest/port_io.hpp"
#include "tests/guest/serial.hpp"

namespace probe::pci {
namespace {
constexpr uint16_t kAddressPort = 0xCF8;
constexpr uint16_t kDataPort = 0xCFC;
constexpr uint32_t kEnable = 1u << 31;

constinit uint32_t g_accesses = 0;

// Selects the dword holding `reg` (PCI 3.0, 3.2.2.3.2: bits 7:2 register, 10:8 function,
// 15:11 device, 23:16 bus, 31 enable).
void select(uint8_t dev, uint8_t fn, uint8_t reg) {
    ++g_accesses;
    io::outl(kAddressPort,
             kEnable | (uint32_t{dev} << 11) | (uint32_t{fn} << 8) | (reg & 0xFCu));
}
}  // namespace

uint32_t config_read32(uint8_t dev, uint8_t fn, uint8_t reg) {
    select(dev, fn, reg);
    return io::inl(kDataPort);
}

uint16_t config_read16(uint8_t dev, uint8_t fn, uint8_t reg) {
    select(dev, fn, reg);
    return io::inw(static_cast<uint16_t>(kDataPort + (reg & 2)));
}

void config_write32(uint8_t dev, uint8_t fn, uint8_t reg, uint32_t value) {
    select(dev, fn, reg);
    io::outl(kDataPort, value);
}

void config_write16(uint8_t dev, uint8_t fn, uint8_t reg, uint16_t value) {
    select(dev, fn, reg);
    io::outw(static_cast<uint16_t>(kDataPort + (reg & 2)), value);
}

uint32_t config_accesses() { return g_accesses; }

namespace {

// Calls visit(dev, fn, id) for every function present on bus 0, in order, until visit returns
// true (then returns true). Absent function 0 skips the device; a single-function device
// (header type bit 7 clear) skips functions 1..7.
template <typename Visit>
bool walk_bus0(Visit visit) {
    for (uint8_t dev = 0; dev < 32; ++dev) {
        for (uint8_t fn = 0; fn < 8; ++fn) {
            const uint32_t id = config_read32(dev, fn, 0x00);
            if ((id & 0xFFFF) == 0xFFFF) {
                if (fn == 0) {
                    break;  // no device: skip its other functions
                }
                continue;
            }
            if (visit(dev, fn, id)) {
                return true;
            }
            if (fn == 0 && (config_read32(dev, fn, 0x0C) & (0x80u << 16)) == 0) {
                break;  // single-function device
            }
        }
    }
    return false;
}

}  // namespace

bool find(uint16_t vendor, uint16_t device, Function* out) {
    const uint32_t want = (uint32_t{device} << 16) | vendor;
    return walk_bus0([&](uint8_t dev, uint8_t fn, uint32_t id) {
        if (id != want) {
            return false;
        }
        *out = Function{dev, fn};
        return true;
    });
}

bool find_nth(uint16_t vendor, uint16_t device_a, uint16_t device_b, uint32_t index,
              Function* out, uint16_t* matched) {
    uint32_t seen = 0;
    return walk_bus0([&](uint8_t dev, uint8_t fn, uint32_t id) {
        const auto dev_id = static_cast<uint16_t>(id >> 16);
        if ((id & 0xFFFF) != vendor || dev_id == 0 ||
            (dev_id != device_a && dev_id != device_b)) {
            return false;
        }
        if (seen++ != index) {
            return false;
        }
        *out = Function{dev, fn};
        *matched = dev_id;
        return true;
    });
}

uint32_t enumerate_and_report() {
    uint32_t count = 0;
    walk_bus0([&](uint8_t dev, uint8_t fn, uint32_t id) {
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
        return false;
    });
    serial::emit(Record("pci_done").u("count", count));
    return count;
}

}  // namespace probe::pci
