#include "tests/guest/serial.hpp"

#include <cstdint>

#include "tests/guest/port_io.hpp"

namespace probe::serial {
namespace {

// 16550A registers (PC16550D datasheet, table II), offsets from the base.
constexpr uint16_t kCom1 = 0x3f8;
constexpr uint16_t kThr = kCom1 + 0;  // transmit holding register (write)
constexpr uint16_t kFcr = kCom1 + 2;  // FIFO control (write)
constexpr uint16_t kIir = kCom1 + 2;  // interrupt identification (read)
constexpr uint16_t kLcr = kCom1 + 3;  // line control
constexpr uint16_t kLsr = kCom1 + 5;  // line status

constexpr uint8_t kLcr8N1 = 0x03;          // 8 data bits, no parity, 1 stop, DLAB = 0
constexpr uint8_t kFcrEnableClear = 0x07;  // enable FIFOs, clear RX and TX FIFOs
constexpr uint8_t kIirFifosEnabled = 0xc0; // IIR bits 7:6 = 11 on a 16550A with FIFOs on
constexpr uint8_t kLsrThre = 0x20;         // THR (or the whole TX FIFO) is empty

// A UART that never reports THRE (none present reads 0xff, which has it
// set) must not hang the guest: after this many polls write anyway.
constexpr uint32_t kMaxPolls = 100000;

// Bytes that may be written after one THRE: 16 with the FIFO, else 1.
constinit size_t g_burst = 1;

void wait_thre() {
    for (uint32_t i = 0; i < kMaxPolls; ++i) {
        if ((io::inb(kLsr) & kLsrThre) != 0) {
            return;
        }
    }
}

}  // namespace

void init() {
    io::outb(kLcr, kLcr8N1);
    io::outb(kFcr, kFcrEnableClear);
    g_burst = (io::inb(kIir) & kIirFifosEnabled) == kIirFifosEnabled ? 16 : 1;
}

void write(const char* s, size_t n) {
    size_t i = 0;
    while (i < n) {
        wait_thre();
        for (size_t k = 0; k < g_burst && i < n; ++k, ++i) {
            io::outb(kThr, static_cast<uint8_t>(s[i]));
        }
    }
}

void write(const char* s) { write(s, cstr_len(s)); }

void write_line(const Line& line) {
    // One write() for text and newline: saves a THRE poll (a VM exit).
    char buf[Line::kCapacity + 4];
    size_t n = line.size();
    for (size_t i = 0; i < n; ++i) {
        buf[i] = line.data()[i];
    }
    if (line.truncated()) {
        buf[n++] = '.';
        buf[n++] = '.';
        buf[n++] = '.';
    }
    buf[n++] = '\n';
    write(buf, n);
}

}  // namespace probe::serial
