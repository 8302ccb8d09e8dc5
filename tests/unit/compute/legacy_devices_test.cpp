#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "compute/devices/legacy/cmos_rtc.hpp"
#include "compute/devices/legacy/debug_exit.hpp"
#include "compute/devices/legacy/i8042.hpp"
#include "compute/devices/legacy/serial_8250.hpp"
#include "tests/fakes/fake_interrupts.hpp"

using namespace hcnode;
using namespace hcnode::compute;

namespace {

uint8_t in8(BusDevice& d, uint64_t off) {
  uint8_t b = 0;
  d.read(off, std::span<uint8_t>(&b, 1));
  return b;
}
void out8(BusDevice& d, uint64_t off, uint8_t v) { d.write(off, std::span<const uint8_t>(&v, 1)); }

struct SerialFixture {
  std::shared_ptr<testing::FakeIrqLine::Counters> irq = std::make_shared<testing::FakeIrqLine::Counters>();
  std::string output;
  Serial8250 uart{std::make_unique<testing::FakeIrqLine>(4, irq),
                  [this](std::span<const uint8_t> b) { output.append(b.begin(), b.end()); }};
};

}  // namespace

TEST_CASE("8250: bytes written to THR reach the sink, LSR shows an empty transmitter",
          "[compute][serial]") {
  SerialFixture f;
  for (char c : std::string("hello\n")) {
    out8(f.uart, 0, static_cast<uint8_t>(c));
  }
  CHECK(f.output == "hello\n");
  CHECK((in8(f.uart, 5) & 0x60) == 0x60);
  CHECK(f.uart.bytes_out() == 6);
}

TEST_CASE("8250: divisor latch access does not transmit", "[compute][serial]") {
  SerialFixture f;
  out8(f.uart, 3, 0x83);  // DLAB + 8N1
  out8(f.uart, 0, 0x01);  // DLL
  out8(f.uart, 1, 0x00);  // DLM
  CHECK(in8(f.uart, 0) == 0x01);
  out8(f.uart, 3, 0x03);
  CHECK(f.output.empty());
}

TEST_CASE("8250: received bytes set data-ready and raise the RX interrupt when enabled",
          "[compute][serial]") {
  SerialFixture f;
  out8(f.uart, 4, 0x08);  // OUT2: interrupts reach the line
  CHECK(f.uart.enqueue_input(std::vector<uint8_t>{'a', 'b'}) == 2);
  CHECK(f.irq->rising_edges == 0);  // IER still 0
  CHECK((in8(f.uart, 5) & 0x01) == 1);
  out8(f.uart, 1, 0x01);  // enable RX data interrupt
  CHECK(f.irq->rising_edges == 1);
  CHECK((in8(f.uart, 2) & 0x0F) == 0x04);
  CHECK(in8(f.uart, 0) == 'a');
  CHECK(in8(f.uart, 0) == 'b');
  CHECK((in8(f.uart, 5) & 0x01) == 0);
  CHECK((in8(f.uart, 2) & 0x01) == 1);  // no interrupt pending
}

TEST_CASE("8250: THR-empty interrupt on enable and after each write, cleared by reading IIR",
          "[compute][serial]") {
  SerialFixture f;
  out8(f.uart, 4, 0x08);
  out8(f.uart, 1, 0x02);  // enable THR empty: fires at once (transmitter is empty)
  CHECK(f.irq->rising_edges == 1);
  CHECK((in8(f.uart, 2) & 0x0F) == 0x02);
  CHECK((in8(f.uart, 2) & 0x0F) == 0x01);  // acknowledged by the previous read
  out8(f.uart, 0, 'x');
  CHECK(f.irq->rising_edges == 2);
}

TEST_CASE("8250: no interrupt without OUT2, loopback routes output to input", "[compute][serial]") {
  SerialFixture f;
  out8(f.uart, 4, 0x00);
  out8(f.uart, 1, 0x03);
  CHECK(f.irq->rising_edges == 0);
  out8(f.uart, 4, 0x10);  // loopback
  out8(f.uart, 0, 0x5A);
  CHECK(f.output.empty());
  CHECK(in8(f.uart, 0) == 0x5A);
}

TEST_CASE("8250: host input beyond the FIFO limit is dropped, not buffered without bound",
          "[compute][serial]") {
  SerialFixture f;
  std::vector<uint8_t> big(Serial8250::kRxFifoLimit + 100, 'z');
  CHECK(f.uart.enqueue_input(big) == Serial8250::kRxFifoLimit);
}

TEST_CASE("i8042: command 0xFE resets the machine, self-test answers 0x55", "[compute][i8042]") {
  int resets = 0;
  I8042 kbc([&] { ++resets; });
  CHECK((in8(kbc, I8042::kCommandPort) & 0x01) == 0);
  out8(kbc, I8042::kCommandPort, 0xAA);
  CHECK((in8(kbc, I8042::kCommandPort) & 0x01) == 1);
  CHECK(in8(kbc, I8042::kDataPort) == 0x55);
  out8(kbc, I8042::kCommandPort, 0x20);
  CHECK(in8(kbc, I8042::kDataPort) == 0x30);
  out8(kbc, I8042::kCommandPort, 0x60);
  out8(kbc, I8042::kDataPort, 0x47);
  out8(kbc, I8042::kCommandPort, 0x20);
  CHECK(in8(kbc, I8042::kDataPort) == 0x47);
  CHECK(resets == 0);
  out8(kbc, I8042::kCommandPort, 0xFE);
  CHECK(resets == 1);
  // Writing the output port with the reset bit low also resets.
  out8(kbc, I8042::kCommandPort, 0xD1);
  out8(kbc, I8042::kDataPort, 0xFE);
  CHECK(resets == 2);
}

TEST_CASE("debug-exit port reports the low byte of the written value", "[compute][debug_exit]") {
  int status = -1;
  DebugExit port([&](uint8_t v) { status = v; });
  const uint8_t word[2] = {0x2A, 0x01};
  port.write(0, word);
  CHECK(status == 0x2A);
}

TEST_CASE("CMOS RTC reads the host clock in BCD, 24-hour mode", "[compute][cmos]") {
  // 2026-11-22 13:45:59 UTC, a Sunday.
  CmosRtc rtc([] { return std::time_t{1795355159}; });
  auto reg = [&](uint8_t index) {
    out8(rtc, 0, index);
    return in8(rtc, 1);
  };
  CHECK(reg(0x00) == 0x59);
  CHECK(reg(0x02) == 0x45);
  CHECK(reg(0x04) == 0x13);
  CHECK(reg(0x07) == 0x22);
  CHECK(reg(0x08) == 0x11);
  CHECK(reg(0x09) == 0x26);
  CHECK(reg(0x32) == 0x20);
  CHECK(reg(0x06) == 0x01);  // Sunday = 1
  CHECK((reg(0x0A) & 0x80) == 0);  // never "update in progress"
  CHECK(reg(0x0B) == 0x02);
  CHECK(reg(0x0D) == 0x80);
  CHECK(reg(0x80 | 0x04) == 0x13);  // NMI-disable bit in the index is ignored
  out8(rtc, 0, 0x40);
  out8(rtc, 1, 0x99);
  CHECK(reg(0x40) == 0x99);  // plain CMOS RAM
  out8(rtc, 0, 0x00);
  out8(rtc, 1, 0x11);
  CHECK(reg(0x00) == 0x59);  // time registers follow the host clock
}
