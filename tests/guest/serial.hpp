// COM1 output (16550A UART at I/O port 0x3f8), polled, CPL3.
//
// Every port access is a VM exit (~40-65 us from CPL3 here), so the writer
// waits for "transmitter empty" once and then fills the 16-byte FIFO
// instead of checking LSR before every byte. Output only: the probe never
// reads from the console.
#pragma once

#include <cstddef>

#include "tests/guest/format.hpp"

namespace probe::serial {

// Sets 8N1 and enables the FIFOs. Call once before writing.
void init();

void write(const char* s, size_t n);
void write(const char* s);

// Writes line.data() followed by '\n'. A line that overflowed its buffer
// ends in "..." so the truncation is visible.
void write_line(const Line& line);

// Writes a "probe: ..." record line (format.hpp).
inline void emit(const Record& record) { write_line(record.line()); }

}  // namespace probe::serial
