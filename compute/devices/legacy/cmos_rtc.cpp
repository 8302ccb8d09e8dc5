#include "compute/devices/legacy/cmos_rtc.hpp"

namespace hcnode::compute {
namespace {
constexpr uint8_t kSeconds = 0x00;
constexpr uint8_t kMinutes = 0x02;
constexpr uint8_t kHours = 0x04;
constexpr uint8_t kDayOfWeek = 0x06;
constexpr uint8_t kDayOfMonth = 0x07;
constexpr uint8_t kMonth = 0x08;
constexpr uint8_t kYear = 0x09;
constexpr uint8_t kStatusA = 0x0A;
constexpr uint8_t kStatusB = 0x0B;
constexpr uint8_t kStatusC = 0x0C;
constexpr uint8_t kStatusD = 0x0D;
constexpr uint8_t kCentury = 0x32;

constexpr uint8_t kStatusB24Hour = 0x02;  // BCD (bit 2 clear), 24-hour mode
constexpr uint8_t kStatusDValid = 0x80;   // "valid RAM and time"

uint8_t bcd(int v) { return static_cast<uint8_t>(((v / 10) << 4) | (v % 10)); }
}  // namespace

CmosRtc::CmosRtc(Clock clock) : clock_(std::move(clock)) {
  ram_[kStatusA] = 0x26;  // 32.768 kHz time base, 1024 Hz rate; bit 7 (UIP) always clear
  ram_[kStatusB] = kStatusB24Hour;
  ram_[kStatusD] = kStatusDValid;
}

uint8_t CmosRtc::read_data() {
  const uint8_t index = index_ & 0x7F;
  switch (index) {
    case kSeconds:
    case kMinutes:
    case kHours:
    case kDayOfWeek:
    case kDayOfMonth:
    case kMonth:
    case kYear:
    case kCentury: {
      std::time_t now = clock_();
      std::tm tm{};
      gmtime_r(&now, &tm);
      switch (index) {
        case kSeconds: return bcd(tm.tm_sec);
        case kMinutes: return bcd(tm.tm_min);
        case kHours: return bcd(tm.tm_hour);
        case kDayOfWeek: return bcd(tm.tm_wday + 1);
        case kDayOfMonth: return bcd(tm.tm_mday);
        case kMonth: return bcd(tm.tm_mon + 1);
        case kYear: return bcd((tm.tm_year + 1900) % 100);
        default: return bcd((tm.tm_year + 1900) / 100);
      }
    }
    case kStatusC:
      return 0;  // no interrupt flags: the RTC interrupt is not emulated
    default:
      return ram_[index];
  }
}

void CmosRtc::read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(mu_);
  for (auto& b : data) {
    b = offset == 1 ? read_data() : index_;
  }
}

void CmosRtc::write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty()) {
    return;
  }
  std::lock_guard lock(mu_);
  if (offset == 0) {
    index_ = data[0];  // bit 7 = NMI disable, kept for reads of the index, ignored otherwise
    return;
  }
  const uint8_t index = index_ & 0x7F;
  // The time registers follow the host clock; writes to them and to C/D are ignored.
  if (index >= kStatusA && index != kStatusC && index != kStatusD && index != kCentury) {
    ram_[index] = index == kStatusA ? static_cast<uint8_t>(data[0] & 0x7F) : data[0];
  }
}

}  // namespace hcnode::compute
