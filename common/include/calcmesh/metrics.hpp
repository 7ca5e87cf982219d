#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace calcmesh {

/// Prometheus label pairs, rendered in key order.
using Labels = std::map<std::string, std::string>;

/// A monotonically increasing count. Lock-free.
class Counter {
  public:
    void add(std::uint64_t amount = 1) { value_.fetch_add(amount, std::memory_order_relaxed); }
    std::uint64_t value() const { return value_.load(std::memory_order_relaxed); }

  private:
    std::atomic<std::uint64_t> value_{0};
};

/// A latency histogram with fixed bucket bounds in seconds. Lock-free.
class Histogram {
  public:
    /// Bounds suited to request latencies on one machine: 50 µs to 10 s.
    static std::vector<double> latency_bounds();

    explicit Histogram(std::vector<double> bounds);
    void observe(std::chrono::nanoseconds duration);
    /// Appends the `_bucket`, `_sum` and `_count` series of `name` with `labels`.
    void render(std::string& out, const std::string& name, const Labels& labels) const;

  private:
    std::vector<double> bounds_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // one per bound, plus +Inf
    std::atomic<std::uint64_t> sum_nanoseconds_{0};
    std::atomic<std::uint64_t> count_{0};
};

/// The metrics of one process, served at `GET /metrics` in the Prometheus text format.
/// Metrics are registered at start-up (thread-safe, takes a lock); updating them is lock-free.
class MetricsRegistry {
  public:
    /// Registers a counter series; the same name with other labels joins the same family.
    Counter& counter(const std::string& name, const std::string& help, Labels labels = {});
    /// Registers a histogram series of latencies.
    Histogram& histogram(const std::string& name, const std::string& help, Labels labels = {});
    /// Registers a gauge whose value is read at each scrape.
    void gauge(const std::string& name, const std::string& help, std::function<double()> read,
               Labels labels = {});

    /// The whole registry in the Prometheus text exposition format 0.0.4.
    std::string render() const;

  private:
    enum class Kind { counter, gauge, histogram };
    struct Series {
        Labels labels;
        Counter* counter = nullptr;
        Histogram* histogram = nullptr;
        std::function<double()> gauge;
    };
    struct Family {
        std::string help;
        Kind kind;
        std::vector<Series> series;
    };
    Family& family(const std::string& name, const std::string& help, Kind kind);

    mutable std::mutex mutex_;
    std::map<std::string, Family> families_;
    std::deque<Counter> counters_;
    std::deque<Histogram> histograms_;
};

/// Renders `{k="v",...}` with Prometheus escaping; empty labels render as nothing.
std::string render_labels(const Labels& labels);

}  // namespace calcmesh
