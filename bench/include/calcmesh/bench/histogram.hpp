#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <vector>

namespace calcmesh::bench {

/// A latency histogram with log-linear buckets (the layout of HdrHistogram): values below 256 ns
/// are exact, and every power-of-two band above is split into 128 equal buckets, so a value read
/// back is at most 1/128 (0.78 %) above the true one. Covers 0 ns to 2^44 ns (4.9 hours);
/// larger values count in the last bucket and still set `max`. Not thread-safe: one per thread,
/// merged with `add`.
class LatencyHistogram {
  public:
    static constexpr unsigned kSubBucketBits = 7;  ///< 128 buckets per power of two
    static constexpr unsigned kMaxValueBits = 44;

    LatencyHistogram();

    void record(std::chrono::nanoseconds value);
    /// Adds every value of `other`.
    void add(const LatencyHistogram& other);

    std::uint64_t count() const { return count_; }
    std::chrono::nanoseconds min() const;
    std::chrono::nanoseconds max() const;
    std::chrono::nanoseconds mean() const;
    /// The smallest recorded value v (up to the bucket error, never below the true one) such
    /// that `percent` % of the values are ≤ v; 0 when empty. `percent` is in [0, 100].
    std::chrono::nanoseconds percentile(double percent) const;

    /// The bucket of a value, and the largest value that bucket holds (what percentiles report).
    static std::size_t bucket_of(std::uint64_t value);
    static std::uint64_t highest_in_bucket(std::size_t bucket);
    static std::uint64_t lowest_in_bucket(std::size_t bucket);
    static std::size_t bucket_count();

  private:
    std::vector<std::uint64_t> buckets_;
    std::uint64_t count_ = 0;
    std::uint64_t min_ = UINT64_MAX;
    std::uint64_t max_ = 0;
    long double sum_ = 0;
};

}  // namespace calcmesh::bench
