#include "calcmesh/metrics.hpp"

#include <fmt/format.h>

#include <stdexcept>

namespace calcmesh {

std::vector<double> Histogram::latency_bounds() {
    return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
            0.05,    0.1,    0.25,    0.5,    1.0,   2.5,    5.0,   10.0};
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      buckets_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1)) {}

void Histogram::observe(std::chrono::nanoseconds duration) {
    const double seconds = std::chrono::duration<double>(duration).count();
    std::size_t bucket = 0;
    while (bucket < bounds_.size() && seconds > bounds_[bucket]) {
        ++bucket;
    }
    buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
    sum_nanoseconds_.fetch_add(static_cast<std::uint64_t>(duration.count()),
                               std::memory_order_relaxed);
    count_.fetch_add(1, std::memory_order_relaxed);
}

void Histogram::render(std::string& out, const std::string& name, const Labels& labels) const {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i <= bounds_.size(); ++i) {
        cumulative += buckets_[i].load(std::memory_order_relaxed);
        Labels with_bound = labels;
        with_bound["le"] = i < bounds_.size() ? fmt::format("{}", bounds_[i]) : "+Inf";
        out += fmt::format("{}_bucket{} {}\n", name, render_labels(with_bound), cumulative);
    }
    out += fmt::format("{}_sum{} {}\n", name, render_labels(labels),
                       static_cast<double>(sum_nanoseconds_.load(std::memory_order_relaxed)) / 1e9);
    out += fmt::format("{}_count{} {}\n", name, render_labels(labels),
                       count_.load(std::memory_order_relaxed));
}

std::string render_labels(const Labels& labels) {
    if (labels.empty()) {
        return {};
    }
    std::string out = "{";
    for (const auto& [key, value] : labels) {
        if (out.size() > 1) {
            out += ',';
        }
        out += key;
        out += "=\"";
        for (char c : value) {
            if (c == '\\' || c == '"') {
                out += '\\';
                out += c;
            } else if (c == '\n') {
                out += "\\n";
            } else {
                out += c;
            }
        }
        out += '"';
    }
    out += '}';
    return out;
}

MetricsRegistry::Family& MetricsRegistry::family(const std::string& name, const std::string& help,
                                                 Kind kind) {
    auto [it, inserted] = families_.try_emplace(name, Family{help, kind, {}});
    if (!inserted && it->second.kind != kind) {
        throw std::logic_error("metric " + name + " registered with two different types");
    }
    return it->second;
}

Counter& MetricsRegistry::counter(const std::string& name, const std::string& help, Labels labels) {
    std::lock_guard lock(mutex_);
    auto& family = this->family(name, help, Kind::counter);
    for (auto& series : family.series) {
        if (series.labels == labels) {
            return *series.counter;
        }
    }
    family.series.push_back(Series{std::move(labels), &counters_.emplace_back(), nullptr, {}});
    return *family.series.back().counter;
}

Histogram& MetricsRegistry::histogram(const std::string& name, const std::string& help,
                                      Labels labels) {
    std::lock_guard lock(mutex_);
    auto& family = this->family(name, help, Kind::histogram);
    for (auto& series : family.series) {
        if (series.labels == labels) {
            return *series.histogram;
        }
    }
    auto& histogram = histograms_.emplace_back(Histogram::latency_bounds());
    family.series.push_back(Series{std::move(labels), nullptr, &histogram, {}});
    return histogram;
}

void MetricsRegistry::gauge(const std::string& name, const std::string& help,
                            std::function<double()> read, Labels labels) {
    std::lock_guard lock(mutex_);
    family(name, help, Kind::gauge)
        .series.push_back(Series{std::move(labels), nullptr, nullptr, std::move(read)});
}

std::string MetricsRegistry::render() const {
    std::lock_guard lock(mutex_);
    std::string out;
    for (const auto& [name, family] : families_) {
        static constexpr const char* kTypeNames[] = {"counter", "gauge", "histogram"};
        out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, family.help, name,
                           kTypeNames[static_cast<int>(family.kind)]);
        for (const auto& series : family.series) {
            switch (family.kind) {
                case Kind::counter:
                    out += fmt::format("{}{} {}\n", name, render_labels(series.labels),
                                       series.counter->value());
                    break;
                case Kind::gauge:
                    out += fmt::format("{}{} {}\n", name, render_labels(series.labels),
                                       series.gauge());
                    break;
                case Kind::histogram:
                    series.histogram->render(out, name, series.labels);
                    break;
            }
        }
    }
    return out;
}

}  // namespace calcmesh
