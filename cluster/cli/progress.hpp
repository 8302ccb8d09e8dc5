// Progress of long operations (import, export, flatten) on stderr.
//
// On a terminal: one bar redrawn in place, at most 10 times a second:
//   import rbd/golden  [##########..........]  52%  532 MiB / 1 GiB  48.2 MiB/s
// Otherwise (logs, CI, pipes): plain lines, one per 10 % step and at least every 5 s:
//   import rbd/golden: 50% (512 MiB of 1 GiB)
// Operations that end within a second show nothing (no flicker, no log noise): the bar and the
// lines start after kQuietStart; the final 100 % line appears only if progress was shown.
// Disabled (--no-progress): nothing at all.
//
// Thread-safety: update() may be called from a library's worker thread; calls are serialized.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace hcnode::cli {

enum class ProgressMode { kAuto, kBar, kLines, kOff };
// What update() counts: bytes (sizes and a rate are shown) or opaque units such as librbd's
// objects (only the percentage is shown).
enum class ProgressUnit { kBytes, kOpaque };

class ProgressReporter {
 public:
  // kAuto: a bar if stderr is a terminal, else lines.
  ProgressReporter(std::string label, ProgressMode mode, ProgressUnit unit = ProgressUnit::kBytes);
  ~ProgressReporter();
  ProgressReporter(const ProgressReporter&) = delete;
  ProgressReporter& operator=(const ProgressReporter&) = delete;

  // `done` of `total` bytes (or units; total 0 = unknown).
  void update(uint64_t done, uint64_t total);
  // The operation ended: a bar is completed (on success) and the line ended; a line mode
  // prints its 100 % line on success. Nothing at all if update() was never called.
  // Idempotent.
  void finish(bool success);

 private:
  void draw_bar_locked(uint64_t done, uint64_t total);

  std::mutex mu_;
  std::string label_;
  ProgressMode mode_;
  ProgressUnit unit_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_{};
  int last_step_ = -1;  // lines: last 10 % step printed
  uint64_t last_done_ = 0;
  uint64_t last_total_ = 0;
  bool drawn_ = false;
  bool finished_ = false;
};

}  // namespace hcnode::cli
