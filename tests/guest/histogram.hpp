// A log2-linear latency histogram (HdrHistogram-like, 16 sub-buckets per
// power of two) for mode=io. Values (TSC ticks) below 16 are exact; above,
// a bucket spans 1/16 of its power of two, so a percentile read back as the
// bucket's upper bound is at most 6.25% above the true value (and never
// above the exact maximum). add() is a handful of instructions: no
// division, no floating point (the probe has no SSE).
//
// Pure code: builds for the guest and the host test.
#pragma once

#include <cstdint>

namespace probe {

class Histogram {
  public:
    static constexpr unsigned kSubBits = 4;
    static constexpr unsigned kSub = 1u << kSubBits;               // 16
    static constexpr unsigned kBuckets = kSub + (64 - kSubBits) * kSub;  // 976

    static unsigned bucket_of(uint64_t v) {
        if (v < kSub) {
            return static_cast<unsigned>(v);
        }
        const unsigned e = 63u - static_cast<unsigned>(__builtin_clzll(v));  // >= kSubBits
        const unsigned sub = static_cast<unsigned>(v >> (e - kSubBits)) & (kSub - 1);
        return kSub + (e - kSubBits) * kSub + sub;
    }

    // Largest value that falls into bucket b.
    static uint64_t upper_bound(unsigned b) {
        if (b < kSub) {
            return b;
        }
        const unsigned e = (b - kSub) / kSub + kSubBits;
        const uint64_t sub = (b - kSub) % kSub;
        const uint64_t lower = (kSub + sub) << (e - kSubBits);
        return lower + (uint64_t{1} << (e - kSubBits)) - 1;
    }

    void add(uint64_t v) {
        ++counts_[bucket_of(v)];
        ++count_;
        if (v > max_) {
            max_ = v;
        }
    }

    uint64_t count() const { return count_; }
    uint64_t max() const { return max_; }

    // The value at `permille` (500 = median, 990 = p99): the upper bound
    // of the bucket holding the ceil(count * permille / 1000)-th smallest
    // value, capped at max(). 0 when empty.
    uint64_t percentile(unsigned permille) const {
        if (count_ == 0) {
            return 0;
        }
        uint64_t rank = (count_ * permille + 999) / 1000;
        if (rank == 0) {
            rank = 1;
        }
        uint64_t seen = 0;
        for (unsigned b = 0; b < kBuckets; ++b) {
            seen += counts_[b];
            if (seen >= rank) {
                const uint64_t ub = upper_bound(b);
                return ub < max_ ? ub : max_;
            }
        }
        return max_;
    }

    void clear() {
        for (auto& c : counts_) {
            c = 0;
        }
        count_ = 0;
        max_ = 0;
    }

  private:
    uint64_t counts_[kBuckets] = {};
    uint64_t count_ = 0;
    uint64_t max_ = 0;
};

}  // namespace probe
