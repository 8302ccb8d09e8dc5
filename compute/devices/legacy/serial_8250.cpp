#include "compute/devices/legacy/serial_8250.hpp"

#include <spdlog/spdlog.h>

namespace hcnode::compute {
namespace {

// Register offsets from the base port.
constexpr uint64_t kData = 0;  // RBR (read) / THR (write); DLL when LCR.DLAB
constexpr uint64_t kIer = 1;   // DLM when LCR.DLAB
constexpr uint64_t kIir = 2;   // IIR (read) / FCR (write)
constexpr uint64_t kLcr = 3;
constexpr uint64_t kMcr = 4;
constexpr uint64_t kLsr = 5;
constexpr uint64_t kMsr = 6;
constexpr uint64_t kScr = 7;

constexpr uint8_t kLcrDlab = 0x80;
constexpr uint8_t kIerRxData = 0x01;
constexpr uint8_t kIerThrEmpty = 0x02;
constexpr uint8_t kIirNone = 0x01;
constexpr uint8_t kIirThrEmpty = 0x02;
constexpr uint8_t kIirRxData = 0x04;
constexpr uint8_t kIirFifoEnabled = 0xC0;
constexpr uint8_t kFcrEnable = 0x01;
constexpr uint8_t kFcrClearRx = 0x02;
constexpr uint8_t kMcrLoop = 0x10;
constexpr uint8_t kMcrOut2 = 0x08;
constexpr uint8_t kLsrDataReady = 0x01;
constexpr uint8_t kLsrThre = 0x20;
constexpr uint8_t kLsrTemt = 0x40;
constexpr uint8_t kMsrDcdDsrCts = 0xB0;

}  // namespace

Serial8250::Serial8250(std::unique_ptr<IrqLine> irq, OutputSink sink)
    : irq_(std::move(irq)), sink_(std::move(sink)) {}

void Serial8250::read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(mu_);
  // Multi-byte accesses read consecutive registers (what the hardware does byte-wise).
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = offset + i < 8 ? read_register(offset + i) : 0xFF;
  }
  update_irq();
}

void Serial8250::write(uint64_t offset, std::span<const uint8_t> data) {
  std::vector<uint8_t> out;
  {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < data.size() && offset + i < 8; ++i) {
      write_register(offset + i, data[i], &out);
    }
    update_irq();
  }
  if (!out.empty() && sink_) {
    sink_(out);
  }
}

uint8_t Serial8250::current_iir() const {
  const uint8_t fifo = (fcr_ & kFcrEnable) ? kIirFifoEnabled : 0;
  if ((ier_ & kIerRxData) && !rx_.empty()) {
    return fifo | kIirRxData;
  }
  if ((ier_ & kIerThrEmpty) && thr_empty_pending_) {
    return fifo | kIirThrEmpty;
  }
  return fifo | kIirNone;
}

uint8_t Serial8250::read_register(uint64_t offset) {
  switch (offset) {
    case kData:
      if (lcr_ & kLcrDlab) {
        return dll_;
      }
      if (rx_.empty()) {
        return 0;
      }
      {
        uint8_t b = rx_.front();
        rx_.pop_front();
        return b;
      }
    case kIer:
      return (lcr_ & kLcrDlab) ? dlm_ : ier_;
    case kIir: {
      uint8_t iir = current_iir();
      // Reading IIR while it reports "THR empty" acknowledges that interrupt (16550 datasheet).
      if ((iir & 0x0F) == kIirThrEmpty) {
        thr_empty_pending_ = false;
      }
      return iir;
    }
    case kLcr:
      return lcr_;
    case kMcr:
      return mcr_;
    case kLsr:
      return static_cast<uint8_t>(kLsrThre | kLsrTemt | (rx_.empty() ? 0 : kLsrDataReady));
    case kMsr:
      if (mcr_ & kMcrLoop) {
        // Loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD.
        return static_cast<uint8_t>(((mcr_ & 0x01) << 5) | ((mcr_ & 0x02) << 3) |
                                    ((mcr_ & 0x04) << 4) | ((mcr_ & 0x08) << 4));
      }
      return kMsrDcdDsrCts;
    case kScr:
      return scr_;
    default:
      return 0xFF;
  }
}

void Serial8250::write_register(uint64_t offset, uint8_t value, std::vector<uint8_t>* out) {
  switch (offset) {
    case kData:
      if (lcr_ & kLcrDlab) {
        dll_ = value;
        return;
      }
      if (mcr_ & kMcrLoop) {
        if (rx_.size() < kRxFifoLimit) {
          rx_.push_back(value);
        }
      } else {
        out->push_back(value);
        ++bytes_out_;
      }
      // Transmission is instant: the THR is empty again at once.
      thr_empty_pending_ = true;
      return;
    case kIer:
      if (lcr_ & kLcrDlab) {
        dlm_ = value;
        return;
      }
      // Enabling "THR empty" while the THR is empty raises that interrupt (Linux's 8250 driver
      // probes for this behaviour, "UART_BUG_THRE").
      if ((value & kIerThrEmpty) && !(ier_ & kIerThrEmpty)) {
        thr_empty_pending_ = true;
      }
      ier_ = value & 0x0F;
      return;
    case kIir:
      fcr_ = value;
      if (value & kFcrClearRx) {
        rx_.clear();
      }
      return;
    case kLcr:
      lcr_ = value;
      return;
    case kMcr:
      mcr_ = value & 0x1F;
      return;
    case kScr:
      scr_ = value;
      return;
    default:
      return;  // LSR and MSR are read-only
  }
}

void Serial8250::update_irq() {
  // OUT2 gates the UART's interrupt output on PC hardware; Linux sets it when it wants IRQs.
  const bool want = (mcr_ & kMcrOut2) && (current_iir() & kIirNone) == 0;
  if (want && !irq_asserted_ && irq_) {
    // The ISA line is edge-triggered (MP table: conforming polarity/trigger for ISA IRQs), so a
    // new condition is delivered as one pulse.
    if (auto r = irq_->pulse(); !r) {
      spdlog::warn("serial: raising IRQ failed: {}", r.error().message());
    }
  }
  irq_asserted_ = want;
}

size_t Serial8250::enqueue_input(std::span<const uint8_t> bytes) {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (uint8_t b : bytes) {
    if (rx_.size() >= kRxFifoLimit) {
      break;
    }
    rx_.push_back(b);
    ++n;
  }
  update_irq();
  return n;
}

uint64_t Serial8250::bytes_out() const {
  std::lock_guard lock(mu_);
  return bytes_out_;
}

}  // namespace hcnode::compute
