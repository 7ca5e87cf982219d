#include "calcmesh/bench/runner.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "calcmesh/bench/schedule.hpp"
#include "calcmesh/process.hpp"

namespace calcmesh::bench {

namespace {

using Clock = std::chrono::steady_clock;

struct Window {
    Clock::time_point start;
    Clock::time_point measure_from;
    Clock::time_point end;
};

/// One client thread: its event loop, its target client and what it counted.
struct Lane {
    net::io_context context{1};
    std::unique_ptr<TargetClient> client;
    LatencyHistogram latency;
    std::atomic<std::uint64_t> answered{0};  // in the window, read by the progress line
    std::atomic<std::uint64_t> failed{0};
    std::uint64_t ok = 0;
    std::uint64_t errors = 0;
    std::uint64_t wrong = 0;
    std::uint64_t successful_total = 0;
    std::map<std::string, std::uint64_t> by_kind;
    std::map<std::string, std::string> examples;
    std::uint64_t outstanding = 0;
    bool backlog = false;
    Clock::time_point last_answer{};
    std::thread thread;
};

void account(Lane& lane, const CallResult& result, Clock::time_point from, bool measured) {
    const auto now = Clock::now();
    if (result.kind == CallResult::Kind::ok) {
        ++lane.successful_total;
    }
    // A wrong answer is never forgiven, not even in the warm-up.
    if (result.kind == CallResult::Kind::wrong) {
        ++lane.wrong;
    }
    if (result.kind != CallResult::Kind::ok &&
        (measured || result.kind == CallResult::Kind::wrong)) {
        ++lane.by_kind[result.label];
        lane.examples.try_emplace(result.label, result.detail);
    }
    if (!measured) {
        return;
    }
    lane.last_answer = std::max(lane.last_answer, now);
    if (result.kind == CallResult::Kind::ok) {
        ++lane.ok;
        lane.latency.record(now - from);
    } else {
        if (result.kind == CallResult::Kind::error) {
            ++lane.errors;
        }
        lane.failed.fetch_add(1, std::memory_order_relaxed);
    }
    lane.answered.fetch_add(1, std::memory_order_relaxed);
}

Task<void> wait_until(net::steady_timer& timer, Clock::time_point time) {
    timer.expires_at(time);
    boost::system::error_code ignored;
    co_await timer.async_wait(net::redirect_error(net::use_awaitable, ignored));
}

/// One closed-loop slot: the next request goes when the previous one is answered.
Task<void> closed_slot(Lane* lane, std::atomic<std::uint64_t>* sequence, Window window) {
    net::steady_timer timer(co_await net::this_coro::executor);
    co_await wait_until(timer, window.start);
    while (Clock::now() < window.end) {
        const auto started = Clock::now();
        const auto result = co_await lane->client->call(sequence->fetch_add(1));
        account(*lane, result, started, started >= window.measure_from);
    }
}

Task<void> open_request(Lane* lane, std::uint64_t sequence, Clock::time_point intended,
                        bool measured) {
    const auto result = co_await lane->client->call(sequence);
    account(*lane, result, intended, measured);
    --lane->outstanding;
}

/// Sends this lane's requests on schedule, whether or not earlier ones were answered, then
/// waits for the last answers.
Task<void> open_dispatch(Lane* lane, std::atomic<std::uint64_t>* sequence,
                         OpenLoopSchedule schedule, Window window, std::size_t max_outstanding) {
    const auto executor = co_await net::this_coro::executor;
    net::steady_timer timer(executor);
    for (std::uint64_t index = 0;; ++index) {
        const auto due = schedule.intended(index);
        if (due >= window.end) {
            break;
        }
        if (Clock::now() < due) {
            co_await wait_until(timer, due);
        } else if (index % 64 == 0) {
            // Behind schedule: still let the answers in now and then.
            co_await net::post(executor, net::use_awaitable);
        }
        while (lane->outstanding >= max_outstanding) {
            lane->backlog = true;
            co_await wait_until(timer, Clock::now() + std::chrono::microseconds(100));
        }
        ++lane->outstanding;
        net::co_spawn(executor,
                      open_request(lane, sequence->fetch_add(1), due, due >= window.measure_from),
                      net::detached);
    }
    while (lane->outstanding > 0) {
        co_await wait_until(timer, Clock::now() + std::chrono::milliseconds(1));
    }
}

void print_progress(std::ostream& out, const std::vector<std::unique_ptr<Lane>>& lanes,
                    const Window& window, std::uint64_t& last_answered,
                    Clock::time_point& last_time) {
    const auto now = Clock::now();
    std::uint64_t answered = 0;
    std::uint64_t failed = 0;
    for (const auto& lane : lanes) {
        answered += lane->answered.load(std::memory_order_relaxed);
        failed += lane->failed.load(std::memory_order_relaxed);
    }
    const double interval = std::chrono::duration<double>(now - last_time).count();
    const double since_start = std::chrono::duration<double>(now - window.start).count();
    const char* phase = now < window.measure_from ? "warm-up"
                        : now < window.end        ? "measuring"
                                                  : "draining";
    out << fmt::format("bench: {:6.1f} s {:9} answers {:9.0f}/s {:6} failed  [{}]\n", since_start,
                       answered, interval > 0 ? (answered - last_answered) / interval : 0.0, failed,
                       phase)
        << std::flush;
    last_answered = answered;
    last_time = now;
}

std::string first_examples(const LoadReport& report) {
    std::string text;
    for (const auto& [label, count] : report.by_kind) {
        text += fmt::format("\n  {} × {}: {}", count, label,
                            report.examples.count(label) ? report.examples.at(label) : "");
    }
    return text;
}

constexpr std::string_view kRefusal = "refusing to report this run: ";

double ms(std::chrono::nanoseconds value) {
    return static_cast<double>(value.count()) / 1e6;
}

}  // namespace

Result<LoadReport> run_load(Target& target, const LoadOptions& options) {
    if (options.threads == 0 || (options.rate <= 0 && options.concurrency == 0)) {
        return fail(ErrorCode::invalid_field,
                    "a run needs at least one thread and one request in flight");
    }
    if (auto prepared = target.prepare(); !prepared) {
        return prepared.error();
    }
    const bool open = options.rate > 0;
    std::vector<std::unique_ptr<Lane>> lanes;
    for (unsigned i = 0; i < options.threads; ++i) {
        auto lane = std::make_unique<Lane>();
        // Split as evenly as they go; a lane has at least one.
        const unsigned connections =
            options.connections == 0
                ? 0
                : std::max(1u, options.connections / options.threads +
                                   (i < options.connections % options.threads ? 1 : 0));
        lane->client = target.client(lane->context.get_executor(), connections);
        lanes.push_back(std::move(lane));
    }
    Window window;
    window.start = Clock::now() + std::chrono::milliseconds(20);
    window.measure_from = window.start + options.warmup;
    window.end = window.measure_from + options.duration;
    std::atomic<std::uint64_t> sequence{0};
    for (unsigned i = 0; i < lanes.size(); ++i) {
        auto* lane = lanes[i].get();
        if (open) {
            net::co_spawn(
                lane->context,
                open_dispatch(lane, &sequence,
                              OpenLoopSchedule(options.rate, window.start, i, options.threads),
                              window, options.max_outstanding),
                net::detached);
        } else {
            // Slots spread over the threads as evenly as they go.
            const unsigned slots = options.concurrency / options.threads +
                                   (i < options.concurrency % options.threads ? 1 : 0);
            for (unsigned slot = 0; slot < slots; ++slot) {
                net::co_spawn(lane->context, closed_slot(lane, &sequence, window), net::detached);
            }
        }
    }
    std::atomic<unsigned> running{static_cast<unsigned>(lanes.size())};
    for (auto& lane : lanes) {
        lane->thread = std::thread([&lane, &running] {
            lane->context.run();
            running.fetch_sub(1);
        });
    }
    std::uint64_t last_answered = 0;
    auto last_time = window.start;
    auto next_progress = window.start + std::chrono::seconds(1);
    while (running.load() > 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        if (options.progress && Clock::now() >= next_progress) {
            print_progress(*options.progress, lanes, window, last_answered, last_time);
            next_progress += std::chrono::seconds(1);
        }
    }
    for (auto& lane : lanes) {
        lane->thread.join();
    }

    LoadReport report;
    report.target = target.to_json();
    report.mode = open ? "open" : "closed";
    report.options = options;
    report.options.progress = nullptr;
    auto last_answer = window.end;
    for (auto& lane : lanes) {
        report.ok += lane->ok;
        report.errors += lane->errors;
        report.wrong += lane->wrong;
        report.successful_total += lane->successful_total;
        report.backlog_limit_reached = report.backlog_limit_reached || lane->backlog;
        report.latency.add(lane->latency);
        for (const auto& [label, count] : lane->by_kind) {
            report.by_kind[label] += count;
        }
        report.examples.insert(lane->examples.begin(), lane->examples.end());
        last_answer = std::max(last_answer, lane->last_answer);
    }
    lanes.clear();  // the clients before the target they use
    report.seconds = std::chrono::duration<double>(last_answer - window.measure_from).count();
    report.throughput = report.seconds > 0 ? static_cast<double>(report.ok) / report.seconds : 0;
    if (report.wrong > 0) {
        return fail(
            ErrorCode::upstream_bad_response,
            fmt::format("{}{} wrong answer{} from {}{}", kRefusal, report.wrong,
                        report.wrong == 1 ? "" : "s", target.describe(), first_examples(report)));
    }
    auto checks = target.finish(report.successful_total);
    if (!checks) {
        return fail(checks.error().code, std::string(kRefusal) + checks.error().message);
    }
    report.checks = std::move(checks).value();
    return report;
}

bool refused(const Error& error) {
    return error.message.starts_with(kRefusal);
}

nlohmann::json to_json(const LoadReport& report) {
    nlohmann::json json = {
        {"target", report.target},
        {"mode", report.mode},
        {"concurrency",
         report.mode == "closed" ? nlohmann::json(report.options.concurrency) : nullptr},
        {"rate_rps", report.mode == "open" ? nlohmann::json(report.options.rate) : nullptr},
        {"threads", report.options.threads},
        {"connections", report.options.connections},
        {"warmup_s", report.options.warmup.count() / 1000.0},
        {"duration_s", report.options.duration.count() / 1000.0},
        {"requests", report.ok + report.errors},
        {"ok", report.ok},
        {"ok_with_warmup", report.successful_total},
        {"errors", report.errors},
        {"wrong", report.wrong},
        {"errors_by_kind", report.by_kind},
        {"error_examples", report.examples},
        {"seconds", report.seconds},
        {"throughput_rps", report.throughput},
        {"backlog_limit_reached", report.backlog_limit_reached},
        {"latency_ms",
         {{"min", ms(report.latency.min())},
          {"mean", ms(report.latency.mean())},
          {"p50", ms(report.latency.percentile(50))},
          {"p90", ms(report.latency.percentile(90))},
          {"p99", ms(report.latency.percentile(99))},
          {"p99_9", ms(report.latency.percentile(99.9))},
          {"max", ms(report.latency.max())}}},
        {"latency_relative_error", 1.0 / (1u << LatencyHistogram::kSubBucketBits)},
        {"checks", report.checks},
    };
    return json;
}

std::string summary(const LoadReport& report) {
    const auto& latency = report.latency;
    std::string load = report.mode == "open"
                           ? fmt::format("open loop at {:.0f} requests/s", report.options.rate)
                           : fmt::format("closed loop, {} in flight", report.options.concurrency);
    std::string text = fmt::format(
        "{}, {} thread{}, {:.1f} s warm-up + {:.1f} s\n"
        "throughput  {:.0f} ok/s ({} ok, {} errors in {:.2f} s)\n"
        "latency ms  p50 {:.3f}  p90 {:.3f}  p99 {:.3f}  p99.9 {:.3f}  max {:.3f}  (mean {:.3f})\n",
        load, report.options.threads, report.options.threads == 1 ? "" : "s",
        report.options.warmup.count() / 1000.0, report.options.duration.count() / 1000.0,
        report.throughput, report.ok, report.errors, report.seconds, ms(latency.percentile(50)),
        ms(latency.percentile(90)), ms(latency.percentile(99)), ms(latency.percentile(99.9)),
        ms(latency.max()), ms(latency.mean()));
    if (!report.by_kind.empty()) {
        text += "errors by kind:" + first_examples(report) + "\n";
    }
    if (report.backlog_limit_reached) {
        text += "the client reached its limit of requests in flight: the target cannot keep up\n";
    }
    if (!report.checks.empty()) {
        text += "checks      " + report.checks.dump() + "\n";
    }
    return text;
}

Result<SweepReport> run_sweep(Target& target, const LoadOptions& options,
                              const SweepOptions& sweep) {
    if (sweep.steps == 0 || sweep.max_fraction <= 0) {
        return fail(ErrorCode::invalid_field,
                    "a sweep needs at least one step and a positive top rate");
    }
    SweepReport report;
    report.peak_rate = sweep.peak;
    if (report.peak_rate <= 0) {
        auto closed = options;
        closed.rate = 0;
        auto peak = run_load(target, closed);
        if (!peak) {
            return peak.error();
        }
        report.peak = std::move(peak).value();
        report.peak_rate = report.peak.throughput;
    }
    for (unsigned step = 1; step <= sweep.steps; ++step) {
        auto open = options;
        open.rate = report.peak_rate * sweep.max_fraction * step / sweep.steps;
        if (options.progress) {
            *options.progress << fmt::format("bench: sweep step {}/{} at {:.0f} requests/s\n", step,
                                             sweep.steps, open.rate);
        }
        auto point = run_load(target, open);
        if (!point) {
            return point.error();
        }
        report.points.push_back(std::move(point).value());
        const auto& last = report.points.back();
        if (last.throughput < 0.9 * open.rate || last.backlog_limit_reached) {
            report.saturated = true;
            break;
        }
    }
    return report;
}

nlohmann::json to_json(const SweepReport& report) {
    nlohmann::json points = nlohmann::json::array();
    for (const auto& point : report.points) {
        points.push_back(to_json(point));
    }
    return {
        {"peak_rps", report.peak_rate},
        {"peak_run", report.peak.target.is_null() ? nlohmann::json(nullptr) : to_json(report.peak)},
        {"saturated", report.saturated},
        {"points", points}};
}

std::string sweep_csv(const SweepReport& report) {
    std::string csv = "offered_rps,throughput_rps,p50_ms,p90_ms,p99_ms,p99_9_ms,max_ms,errors\n";
    for (const auto& point : report.points) {
        const auto& latency = point.latency;
        csv += fmt::format("{:.1f},{:.1f},{:.4f},{:.4f},{:.4f},{:.4f},{:.4f},{}\n",
                           point.options.rate, point.throughput, ms(latency.percentile(50)),
                           ms(latency.percentile(90)), ms(latency.percentile(99)),
                           ms(latency.percentile(99.9)), ms(latency.max()), point.errors);
    }
    return csv;
}

Result<void> plot_sweep(const std::string& csv_file, const std::string& png,
                        const std::string& title) {
    std::string gnuplot;
    if (const char* path = std::getenv("PATH")) {
        std::stringstream directories(path);
        for (std::string directory; std::getline(directories, directory, ':');) {
            const auto candidate = std::filesystem::path(directory) / "gnuplot";
            if (::access(candidate.c_str(), X_OK) == 0) {
                gnuplot = candidate.string();
                break;
            }
        }
    }
    if (gnuplot.empty()) {
        return fail(ErrorCode::internal,
                    "gnuplot is not installed (scripts/install-deps installs it)");
    }
    const auto quoted = [](const std::string& text) {
        std::string out = "'";
        for (char c : text) {
            out += c == '\'' ? std::string("''") : std::string(1, c);
        }
        return out + "'";
    };
    const auto script_file = png + ".gp";
    {
        std::ofstream script(script_file);
        script << "set terminal pngcairo size 960,600 font 'sans,11'\n"
               << "set output " << quoted(png) << "\n"
               << "set title " << quoted(title) << " noenhanced\n"
               << "set datafile separator ','\n"
               << "set xlabel 'throughput (answers/s)'\n"
               << "set ylabel 'latency (ms, log scale)'\n"
               << "set logscale y\n"
               << "set grid\n"
               << "set key top left noenhanced\n"
               << "plot for [column=3:7] " << quoted(csv_file)
               << " using 2:column with linespoints title columnheader(column)\n";
    }
    const auto log_file = png + ".log";
    ChildProcess::Options process;
    process.argv = {gnuplot, script_file};
    process.output_file = log_file;
    ChildProcess child(process);
    const auto status = child.wait_for(std::chrono::seconds(30));
    std::ifstream log(log_file);
    const std::string output{std::istreambuf_iterator<char>(log), {}};
    std::filesystem::remove(log_file);
    std::filesystem::remove(script_file);
    if (!status || *status != 0) {
        return fail(ErrorCode::internal, "gnuplot failed: " + output);
    }
    return boost::outcome_v2::success();
}

}  // namespace calcmesh::bench
