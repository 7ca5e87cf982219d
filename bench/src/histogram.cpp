#include "calcmesh/bench/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace calcmesh::bench {

namespace {

constexpr std::uint64_t kSubBuckets = std::uint64_t{1} << LatencyHistogram::kSubBucketBits;
/// Values below this are exact: bucket index = value.
constexpr std::uint64_t kExactLimit = 2 * kSubBuckets;
constexpr std::uint64_t kLargest = (std::uint64_t{1} << LatencyHistogram::kMaxValueBits) - 1;

}  // namespace

std::size_t LatencyHistogram::bucket_count() {
    // The exact range, then one band of kSubBuckets per power of two from 2^8 to 2^43.
    return kExactLimit + (kMaxValueBits - kSubBucketBits - 1) * kSubBuckets;
}

std::size_t LatencyHistogram::bucket_of(std::uint64_t value) {
    value = std::min(value, kLargest);
    if (value < kExactLimit) {
        return static_cast<std::size_t>(value);
    }
    const unsigned exponent = static_cast<unsigned>(std::bit_width(value)) - 1;  // >= 8
    const unsigned shift = exponent - kSubBucketBits;
    const std::uint64_t sub = (value >> shift) - kSubBuckets;  // [0, 128)
    return static_cast<std::size_t>(kExactLimit + (exponent - kSubBucketBits - 1) * kSubBuckets +
                                    sub);
}

std::uint64_t LatencyHistogram::lowest_in_bucket(std::size_t bucket) {
    if (bucket < kExactLimit) {
        return bucket;
    }
    const std::uint64_t band = (bucket - kExactLimit) / kSubBuckets;
    const std::uint64_t sub = (bucket - kExactLimit) % kSubBuckets + kSubBuckets;
    return sub << (band + 1);
}

std::uint64_t LatencyHistogram::highest_in_bucket(std::size_t bucket) {
    if (bucket < kExactLimit) {
        return bucket;
    }
    const std::uint64_t band = (bucket - kExactLimit) / kSubBuckets;
    return lowest_in_bucket(bucket) + (std::uint64_t{1} << (band + 1)) - 1;
}

LatencyHistogram::LatencyHistogram() : buckets_(bucket_count(), 0) {}

void LatencyHistogram::record(std::chrono::nanoseconds value) {
    const auto ns = static_cast<std::uint64_t>(std::max<std::int64_t>(value.count(), 0));
    ++buckets_[bucket_of(ns)];
    ++count_;
    min_ = std::min(min_, ns);
    max_ = std::max(max_, ns);
    sum_ += static_cast<long double>(ns);
}

void LatencyHistogram::add(const LatencyHistogram& other) {
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
        buckets_[i] += other.buckets_[i];
    }
    count_ += other.count_;
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
    sum_ += other.sum_;
}

std::chrono::nanoseconds LatencyHistogram::min() const {
    return std::chrono::nanoseconds(count_ ? min_ : 0);
}

std::chrono::nanoseconds LatencyHistogram::max() const {
    return std::chrono::nanoseconds(max_);
}

std::chrono::nanoseconds LatencyHistogram::mean() const {
    return std::chrono::nanoseconds(count_ ? static_cast<std::int64_t>(std::llround(sum_ / count_))
                                           : 0);
}

std::chrono::nanoseconds LatencyHistogram::percentile(double percent) const {
    if (count_ == 0) {
        return std::chrono::nanoseconds(0);
    }
    percent = std::clamp(percent, 0.0, 100.0);
    // The rank of the value asked for, counting from 1.
    const auto rank = std::max<std::uint64_t>(
        1, static_cast<std::uint64_t>(std::ceil(percent / 100.0 * static_cast<double>(count_))));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
        seen += buckets_[i];
        if (seen >= rank) {
            // The bucket's top is within the error bound; the exact extremes are known, and
            // the last bucket also holds whatever was beyond the range.
            const auto value =
                i + 1 == buckets_.size() ? max_ : std::clamp(highest_in_bucket(i), min_, max_);
            return std::chrono::nanoseconds(static_cast<std::int64_t>(value));
        }
    }
    return std::chrono::nanoseconds(static_cast<std::int64_t>(max_));
}

}  // namespace calcmesh::bench
