#include "calcmesh/bench/histogram.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

namespace calcmesh::bench {
namespace {

using std::chrono::nanoseconds;

constexpr double kBound = 0.01;  // the 1 % the benchmark promises

TEST(LatencyHistogram, EveryValueReadsBackWithinOnePercentAndNeverBelow) {
    // All values up to 2^20 one by one, then a dense log-spaced walk up to the top of the range.
    std::vector<std::uint64_t> values;
    values.reserve(std::size_t{1} << 20);
    for (std::uint64_t v = 0; v < (1u << 20); ++v) {
        values.push_back(v);
    }
    // NOLINTNEXTLINE(bugprone-float-loop-counter): the walk is the geometric sequence itself
    for (double v = 1 << 20; v < std::ldexp(1.0, LatencyHistogram::kMaxValueBits); v *= 1.0001) {
        values.push_back(static_cast<std::uint64_t>(v));
    }
    for (const auto value : values) {
        const auto bucket = LatencyHistogram::bucket_of(value);
        ASSERT_LT(bucket, LatencyHistogram::bucket_count());
        const auto low = LatencyHistogram::lowest_in_bucket(bucket);
        const auto high = LatencyHistogram::highest_in_bucket(bucket);
        ASSERT_LE(low, value);
        ASSERT_GE(high, value);
        ASSERT_LE(static_cast<double>(high - value), kBound * static_cast<double>(value)) << value;
    }
}

TEST(LatencyHistogram, BucketsTileTheRangeWithoutGapsOrOverlaps) {
    for (std::size_t bucket = 1; bucket < LatencyHistogram::bucket_count(); ++bucket) {
        ASSERT_EQ(LatencyHistogram::lowest_in_bucket(bucket),
                  LatencyHistogram::highest_in_bucket(bucket - 1) + 1)
            << bucket;
        ASSERT_EQ(LatencyHistogram::bucket_of(LatencyHistogram::lowest_in_bucket(bucket)), bucket);
    }
}

TEST(LatencyHistogram, PercentilesMatchTheExactOrderStatisticsWithinOnePercent) {
    // Latency-like data: log-normal around 300 µs with a long tail, plus a few stalls.
    std::mt19937_64 random(42);
    std::lognormal_distribution<double> latency(std::log(300'000.0), 0.8);
    std::vector<std::uint64_t> values;
    LatencyHistogram histogram;
    for (int i = 0; i < 200'000; ++i) {
        auto value = static_cast<std::uint64_t>(latency(random));
        if (i % 5000 == 0) {
            value = 2'000'000'000 + static_cast<std::uint64_t>(i);
        }
        values.push_back(value);
        histogram.record(nanoseconds(value));
    }
    std::sort(values.begin(), values.end());
    for (const double percent : {0.0, 1.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
        const auto rank = std::max<std::size_t>(
            1, static_cast<std::size_t>(std::ceil(percent / 100.0 * values.size())));
        const auto exact = static_cast<double>(values[rank - 1]);
        const auto reported = static_cast<double>(histogram.percentile(percent).count());
        EXPECT_GE(reported, exact) << percent;
        EXPECT_LE(reported - exact, kBound * exact) << percent;
    }
    EXPECT_EQ(histogram.count(), values.size());
    EXPECT_EQ(static_cast<std::uint64_t>(histogram.min().count()), values.front());
    EXPECT_EQ(static_cast<std::uint64_t>(histogram.max().count()), values.back());
    EXPECT_EQ(histogram.percentile(100), histogram.max());
}

TEST(LatencyHistogram, MergedHistogramsEqualOneThatSawEverything) {
    LatencyHistogram first;
    LatencyHistogram second;
    LatencyHistogram all;
    for (std::int64_t value = 1; value < 1'000'000; value = value * 3 + 1) {
        (value % 2 ? first : second).record(nanoseconds(value));
        all.record(nanoseconds(value));
    }
    first.add(second);
    EXPECT_EQ(first.count(), all.count());
    EXPECT_EQ(first.mean(), all.mean());
    for (const double percent : {10.0, 50.0, 99.0}) {
        EXPECT_EQ(first.percentile(percent), all.percentile(percent));
    }
}

TEST(LatencyHistogram, EmptyAndHugeValues) {
    LatencyHistogram histogram;
    EXPECT_EQ(histogram.percentile(50).count(), 0);
    EXPECT_EQ(histogram.min().count(), 0);
    EXPECT_EQ(histogram.mean().count(), 0);
    // Beyond the covered range: counted in the last bucket, max stays exact.
    const auto huge = nanoseconds(std::int64_t{1} << 50);
    histogram.record(huge);
    histogram.record(nanoseconds(-5));  // a clock step backwards counts as 0
    EXPECT_EQ(histogram.count(), 2u);
    EXPECT_EQ(histogram.max(), huge);
    EXPECT_EQ(histogram.percentile(1).count(), 0);
    EXPECT_EQ(histogram.percentile(100), huge);
}

}  // namespace
}  // namespace calcmesh::bench
