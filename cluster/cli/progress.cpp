#include "cluster/cli/progress.hpp"

#include <unistd.h>

#include <cstdio>

#include <spdlog/fmt/fmt.h>

#include "base/size.hpp"

namespace hcnode::cli {

namespace {

constexpr int kBarWidth = 20;
constexpr auto kBarInterval = std::chrono::milliseconds(100);
constexpr auto kLineInterval = std::chrono::seconds(5);
// Nothing is shown before this: quick operations stay silent.
constexpr auto kQuietStart = std::chrono::milliseconds(1000);

int percent(uint64_t done, uint64_t total) {
  if (total == 0) {
    return 0;
  }
  return static_cast<int>(static_cast<double>(std::min(done, total)) * 100.0 /
                          static_cast<double>(total));
}

}  // namespace

ProgressReporter::ProgressReporter(std::string label, ProgressMode mode, ProgressUnit unit)
    : label_(std::move(label)), mode_(mode), unit_(unit), start_(std::chrono::steady_clock::now()) {
  if (mode_ == ProgressMode::kAuto) {
    mode_ = ::isatty(STDERR_FILENO) ? ProgressMode::kBar : ProgressMode::kLines;
  }
}

ProgressReporter::~ProgressReporter() {
  if (!finished_ && drawn_ && mode_ == ProgressMode::kBar) {
    std::fputc('\n', stderr);
  }
}

void ProgressReporter::update(uint64_t done, uint64_t total) {
  std::lock_guard lock(mu_);
  if (finished_ || mode_ == ProgressMode::kOff) {
    return;
  }
  last_done_ = done;
  last_total_ = total;
  const auto now = std::chrono::steady_clock::now();
  if (now - start_ < kQuietStart) {
    return;
  }
  if (mode_ == ProgressMode::kBar) {
    if (drawn_ && now - last_draw_ < kBarInterval) {
      return;
    }
    last_draw_ = now;
    draw_bar_locked(done, total);
    return;
  }
  const int step = percent(done, total) / 10;
  if (step > last_step_ || now - last_draw_ >= kLineInterval) {
    if (step >= 10) {
      return;  // the 100 % line comes from finish(true)
    }
    last_step_ = step;
    last_draw_ = now;
    if (unit_ == ProgressUnit::kOpaque) {
      std::fprintf(stderr, "%s: %d%%\n", label_.c_str(), percent(done, total));
    } else if (total != 0) {
      std::fprintf(stderr, "%s: %d%% (%s of %s)\n", label_.c_str(), percent(done, total),
                   format_size(done).c_str(), format_size(total).c_str());
    } else {
      std::fprintf(stderr, "%s: %s\n", label_.c_str(), format_size(done).c_str());
    }
    drawn_ = true;
  }
}

void ProgressReporter::draw_bar_locked(uint64_t done, uint64_t total) {
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const int pct = percent(done, total);
  const int filled = pct * kBarWidth / 100;
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(kBarWidth - filled), '.');
  std::string rate = unit_ == ProgressUnit::kBytes && secs > 0.2
                         ? format_size(static_cast<uint64_t>(static_cast<double>(done) / secs)) + "/s"
                         : "";
  std::string amount;
  if (unit_ == ProgressUnit::kBytes) {
    amount = total != 0 ? format_size(done) + " / " + format_size(total) : format_size(done);
  }
  // "\r" + clear to end of line: the bar shrinks cleanly when the numbers get shorter.
  std::string line = fmt::format("\r{}  [{}] {:3d}%  {}  {}\x1b[K", label_, bar, pct, amount, rate);
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressReporter::finish(bool success) {
  std::lock_guard lock(mu_);
  // Nothing shown so far (a quick operation, or one without progress): nothing now either.
  if (finished_ || mode_ == ProgressMode::kOff || !drawn_) {
    finished_ = true;
    return;
  }
  if (mode_ == ProgressMode::kBar) {
    if (success) {
      const uint64_t total = last_total_ != 0 ? last_total_ : last_done_;
      draw_bar_locked(total, total);
    }
    std::fputc('\n', stderr);
  } else if (success) {
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const uint64_t total = last_total_ != 0 ? last_total_ : last_done_;
    if (unit_ == ProgressUnit::kBytes) {
      std::fprintf(stderr, "%s: 100%% (%s) in %.1f s\n", label_.c_str(),
                   format_size(total).c_str(), secs);
    } else {
      std::fprintf(stderr, "%s: 100%% in %.1f s\n", label_.c_str(), secs);
    }
  }
  finished_ = true;
}

}  // namespace hcnode::cli
