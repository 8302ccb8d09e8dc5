// LatencyHistogram: log-linear buckets of nanosecond values (HdrHistogram's idea, small): exact
// below 16, then 16 sub-buckets per power of two, so any percentile is within 1/16 (6.25%) of
// the true value. One writer thread records (a device queue's worker); any thread may read a
// snapshot while it runs (relaxed atomics: a snapshot may miss the latest few samples).
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>

namespace hcnode {

class LatencyHistogram {
 public:
  static constexpr int kSubBits = 4;
  static constexpr size_t kBuckets = 16 + (64 - kSubBits) * 16;

  static constexpr size_t bucket_of(uint64_t v) {
    if (v < 16) return static_cast<size_t>(v);
    const int msb = 63 - std::countl_zero(v);
    const uint64_t sub = (v >> (msb - kSubBits)) & 15;
    return 16 + static_cast<size_t>(msb - kSubBits) * 16 + static_cast<size_t>(sub);
  }
  // The middle of a bucket's range (the lower bound for the exact ones).
  static constexpr uint64_t value_of(size_t bucket) {
    if (bucket < 16) return bucket;
    const int msb = static_cast<int>((bucket - 16) / 16) + kSubBits;
    const uint64_t sub = (bucket - 16) % 16;
    const uint64_t low = (uint64_t{1} << msb) | (sub << (msb - kSubBits));
    return low + (uint64_t{1} << (msb - kSubBits)) / 2;
  }

  // Writer thread only.
  void record(uint64_t value) {
    auto& b = buckets_[bucket_of(value)];
    b.store(b.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    count_.store(count_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    if (value > max_.load(std::memory_order_relaxed)) max_.store(value, std::memory_order_relaxed);
  }

  struct Snapshot {
    std::array<uint64_t, kBuckets> buckets{};
    uint64_t count = 0;
    uint64_t max = 0;

    void merge(const Snapshot& o) {
      for (size_t i = 0; i < kBuckets; ++i) buckets[i] += o.buckets[i];
      count += o.count;
      max = std::max(max, o.max);
    }
    // q in [0, 1]; 0 when empty. The bucket's middle, capped at the maximum seen.
    uint64_t percentile(double q) const {
      if (count == 0) return 0;
      auto rank = static_cast<uint64_t>(q * static_cast<double>(count) + 0.5);
      if (rank < 1) rank = 1;
      uint64_t seen = 0;
      for (size_t i = 0; i < kBuckets; ++i) {
        seen += buckets[i];
        if (seen >= rank) return std::min(value_of(i), max);
      }
      return max;
    }
  };

  Snapshot snapshot() const {
    Snapshot s;
    for (size_t i = 0; i < kBuckets; ++i) s.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
    s.count = count_.load(std::memory_order_relaxed);
    s.max = max_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  std::array<std::atomic<uint64_t>, kBuckets> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> max_{0};
};

}  // namespace hcnode
