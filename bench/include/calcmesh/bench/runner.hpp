#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "calcmesh/bench/histogram.hpp"
#include "calcmesh/bench/target.hpp"
#include "calcmesh/error.hpp"

namespace calcmesh::bench {

/// How a run loads its target.
struct LoadOptions {
    /// Closed loop: this many requests in flight, each sent when the previous one of its slot
    /// is answered. Used when `rate` is 0.
    unsigned concurrency = 16;
    /// Open loop: requests per second in total, sent on schedule whatever the answers do;
    /// latency counts from the intended send time.
    double rate = 0;
    unsigned threads = 1;  ///< client threads, each with its own event loop and connections
    /// HTTP connections in all, split over the threads (0: one per request in flight). Past
    /// them a request waits in line on one, its latency counting the wait, as with wrk2's
    /// fixed connections: an open loop that opened one per outstanding request would run into
    /// the target's connection cap and measure its own connection errors.
    unsigned connections = 512;
    std::chrono::milliseconds warmup{1'000};    ///< answers in this time are not counted
    std::chrono::milliseconds duration{5'000};  ///< the measured time
    /// Open loop: requests in flight beyond this wait for a slot (their latency still counts
    /// from the intended time); reaching it is reported.
    std::size_t max_outstanding = 20'000;
    std::ostream* progress = nullptr;  ///< if set, a progress line every second
};

/// What a run measured. Only requests started (closed loop) or due (open loop) in the
/// measured window count.
struct LoadReport {
    nlohmann::json target;
    std::string mode;  ///< "closed" or "open"
    LoadOptions options;
    std::uint64_t ok = 0;
    std::uint64_t errors = 0;
    std::uint64_t wrong = 0;
    std::uint64_t successful_total = 0;            ///< ok answers, warm-up included
    std::map<std::string, std::uint64_t> by_kind;  ///< errors and wrong answers by label
    std::map<std::string, std::string> examples;   ///< the first detail of each label
    double seconds = 0;     ///< from the window's start to the last counted answer
    double throughput = 0;  ///< ok answers per second
    bool backlog_limit_reached = false;
    LatencyHistogram latency;                          ///< of the ok answers
    nlohmann::json checks = nlohmann::json::object();  ///< what the target's `finish` found
};

/// Runs one load against a target: prepare, warm-up, measured window, drain, finish.
/// Fails if the target cannot be prepared; and refuses the run (see `refused`) if any answer
/// was wrong or the target's final check failed: such a run is never reported.
Result<LoadReport> run_load(Target& target, const LoadOptions& options);

/// True for the failure of a run that went through but must not be reported.
bool refused(const Error& error);

/// The report as JSON: throughput, errors by kind and latency percentiles in milliseconds.
nlohmann::json to_json(const LoadReport& report);
/// A few lines for people.
std::string summary(const LoadReport& report);

/// A series of open-loop runs at rising rates, up to saturation.
struct SweepOptions {
    unsigned steps = 10;        ///< rates peak*max_fraction*k/steps for k = 1..steps
    double max_fraction = 1.2;  ///< the last rate, as a fraction of the closed-loop peak
    double peak = 0;            ///< known peak rate; 0 measures it first with a closed loop
};

struct SweepReport {
    LoadReport peak;  ///< the closed-loop run that found the peak (empty if it was given)
    double peak_rate = 0;
    std::vector<LoadReport> points;
    bool saturated = false;  ///< stopped early: achieved < 90 % of the offered rate
};

/// Runs the sweep; stops after the first point that cannot keep up with its rate.
Result<SweepReport> run_sweep(Target& target, const LoadOptions& options,
                              const SweepOptions& sweep);
nlohmann::json to_json(const SweepReport& report);
/// offered_rps,throughput_rps,p50_ms,p90_ms,p99_ms,p99_9_ms,max_ms,errors: one line per point.
std::string sweep_csv(const SweepReport& report);
/// Draws latency percentiles against throughput with gnuplot into `png`. Fails with
/// `internal` naming what went wrong (gnuplot missing, or its error output).
Result<void> plot_sweep(const std::string& csv_file, const std::string& png,
                        const std::string& title);

}  // namespace calcmesh::bench
