// 8250/16550A UART (COM1 at 0x3F8, IRQ 4): the guest console.
//
// Emulates what Linux's 8250 driver and early printk use: THR/RBR, IER, IIR/FCR, LCR (DLAB),
// MCR (loopback, OUT2), LSR, MSR, SCR and the divisor latch. Transmission is instant, so the
// transmitter is always empty (LSR THRE|TEMT); received bytes wait in a FIFO. Interrupts follow
// the 16550 rules: a pending condition enabled in IER (received data, THR empty) raises the IRQ
// line; reading IIR reports the highest-priority one and reading IIR clears "THR empty".
// (Reference: National Semiconductor PC16550D datasheet, register summary table.)
//
// Thread-safety: guest accesses come from any vCPU thread, input from the console thread; one
// mutex protects the register state. Output is handed to the sink outside the lock order of
// nothing else (the sink must not call back into the UART).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>

#include "compute/devices/bus.hpp"
#include "compute/devices/interrupts.hpp"

namespace hcnode::compute {

class Serial8250 final : public BusDevice {
 public:
  using OutputSink = std::function<void(std::span<const uint8_t>)>;

  static constexpr uint64_t kCom1Base = 0x3F8;
  static constexpr uint32_t kCom1Gsi = 4;
  static constexpr size_t kRxFifoLimit = 64 * 1024;  // host input beyond this is dropped

  // irq may be null (no interrupts: polled use only).
  Serial8250(std::unique_ptr<IrqLine> irq, OutputSink sink);

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Host input (console client typing). Returns how many bytes were queued.
  size_t enqueue_input(std::span<const uint8_t> bytes);

  // For stats and tests.
  uint64_t bytes_out() const;

 private:
  uint8_t read_register(uint64_t offset);
  void write_register(uint64_t offset, uint8_t value, std::vector<uint8_t>* out);
  uint8_t current_iir() const;
  // Recomputes the interrupt condition and raises the line on a new one. Caller holds mu_.
  void update_irq();

  mutable std::mutex mu_;
  std::unique_ptr<IrqLine> irq_;
  OutputSink sink_;
  std::deque<uint8_t> rx_;   // guarded by mu_
  uint8_t ier_ = 0;          // guarded by mu_ (and the rest below)
  uint8_t lcr_ = 0x03;       // 8N1
  uint8_t mcr_ = 0x08;       // OUT2
  uint8_t scr_ = 0;
  uint8_t dll_ = 0x0C;       // 9600 baud divisor
  uint8_t dlm_ = 0;
  uint8_t fcr_ = 0;
  bool thr_empty_pending_ = false;  // "THR empty" interrupt waiting to be seen in IIR
  bool irq_asserted_ = false;
  uint64_t bytes_out_ = 0;
};

}  // namespace hcnode::compute
