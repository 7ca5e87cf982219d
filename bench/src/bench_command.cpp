#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <iostream>
#include <memory>

#include "calcmesh/bench/command.hpp"
#include "calcmesh/bench/runner.hpp"
#include "calcmesh/command.hpp"
#include "calcmesh/config.hpp"

namespace calcmesh::bench {

namespace {

struct CommandOptions {
    TargetOptions target;
    std::string mechanism = "http";
    std::vector<std::string> mix;
    double log_wait_s = 30;
    double timeout_s = 10;
    unsigned concurrency = 16;
    double rate = 0;
    unsigned threads = 1;
    unsigned connections = LoadOptions{}.connections;
    double warmup_s = 1;
    double duration_s = 5;
    bool json = false;
    std::string output;
    bool quiet = false;
    bool sweep = false;
    SweepOptions sweep_options;
    std::string csv = "bench-sweep.csv";
    std::string plot = "bench-sweep.png";
};

std::chrono::milliseconds seconds(double value) {
    return std::chrono::milliseconds(static_cast<std::int64_t>(value * 1000));
}

/// "addition", "div=3": an operation and its weight (1 if not given).
Result<std::vector<std::pair<Operation, unsigned>>> parse_mix(
    const std::vector<std::string>& items) {
    std::vector<std::pair<Operation, unsigned>> mix;
    for (const auto& item : items) {
        const auto equals = item.find('=');
        auto operation = parse_operation(item.substr(0, equals));
        if (!operation) {
            return fail(ErrorCode::invalid_field, "--mix: " + operation.error().message, "mix");
        }
        unsigned weight = 1;
        if (equals != std::string::npos) {
            try {
                weight = static_cast<unsigned>(std::stoul(item.substr(equals + 1)));
            } catch (const std::exception&) {
                weight = 0;
            }
            if (weight == 0) {
                return fail(ErrorCode::invalid_field,
                            "--mix: the weight in '" + item + "' must be a positive whole number",
                            "mix");
            }
        }
        mix.emplace_back(operation.value(), weight);
    }
    return mix;
}

int refuse_or_fail(const Error& error) {
    std::cerr << "calcmesh bench: " << error.message << '\n';
    if (error.code == ErrorCode::invalid_field) {
        return 2;
    }
    return refused(error) ? 3 : 1;
}

void emit(const CommandOptions& options, const nlohmann::json& json, const std::string& text) {
    if (!options.output.empty()) {
        std::ofstream(options.output) << json.dump(2) << '\n';
    }
    if (options.json) {
        std::cout << json.dump(2) << '\n';
    } else {
        std::cout << text;
    }
}

int run(CommandOptions options) {
    // The Kafka clients log through spdlog: their lines go to stderr, the report to stdout.
    auto logger = spdlog::stderr_logger_mt("calcmesh-bench");
    logger->set_level(spdlog::level::warn);
    spdlog::set_default_logger(std::move(logger));
    auto mechanism = parse_mechanism(options.mechanism);
    if (!mechanism) {
        return refuse_or_fail(
            {ErrorCode::invalid_field, "--mechanism: " + mechanism.error().message});
    }
    options.target.mechanism = mechanism.value();
    if (!options.mix.empty()) {
        auto mix = parse_mix(options.mix);
        if (!mix) {
            return refuse_or_fail(mix.error());
        }
        options.target.mix = mix.value();
    }
    options.target.log_wait = seconds(options.log_wait_s);
    options.target.timeout = seconds(options.timeout_s);
    auto target = make_target(options.target);
    if (!target) {
        return refuse_or_fail(target.error());
    }
    LoadOptions load;
    load.concurrency = options.concurrency;
    load.rate = options.rate;
    load.threads = options.threads;
    load.connections = options.connections;
    load.warmup = seconds(options.warmup_s);
    load.duration = seconds(options.duration_s);
    load.progress = options.quiet ? nullptr : &std::cerr;
    if (!options.quiet) {
        std::cerr << "bench: " << target.value()->describe() << '\n';
    }

    if (options.sweep) {
        auto sweep = run_sweep(*target.value(), load, options.sweep_options);
        if (!sweep) {
            return refuse_or_fail(sweep.error());
        }
        std::ofstream(options.csv) << sweep_csv(sweep.value());
        auto plotted = plot_sweep(options.csv, options.plot, target.value()->describe());
        auto json = to_json(sweep.value());
        json["csv"] = options.csv;
        json["plot"] = plotted ? nlohmann::json(options.plot) : nlohmann::json(nullptr);
        std::string text = fmt::format("peak {:.0f} ok/s; sweep written to {}",
                                       sweep.value().peak_rate, options.csv);
        text += plotted ? ", plot to " + options.plot + "\n"
                        : "\nno plot: " + plotted.error().message + "\n";
        text += sweep_csv(sweep.value());
        emit(options, json, text);
        return plotted ? 0 : 1;
    }
    auto report = run_load(*target.value(), load);
    if (!report) {
        return refuse_or_fail(report.error());
    }
    emit(options, to_json(report.value()),
         target.value()->describe() + "\n" + summary(report.value()));
    return 0;
}

}  // namespace

void add_bench_command(CLI::App& app) {
    auto options = std::make_shared<CommandOptions>();
    auto* command = add_command(
        app, "bench",
        "Load a target (job_submitter's /submit, any URL, log_collector's /save_log, or a Kafka "
        "trip) and report throughput, errors and latency percentiles; every answer is checked",
        [options] { return run(*options); });
    auto& target = options->target;
    command->add_option("--target", target.kind, "submit, url, save-log or kafka-trip")
        ->check(CLI::IsMember({"submit", "url", "save-log", "kafka-trip"}))
        ->capture_default_str();
    command
        ->add_option("--url", target.url,
                     "submit: job_submitter's base URL; url: the whole URL; save-log: "
                     "log_collector's base URL")
        ->capture_default_str();
    command->add_option("--mechanism", options->mechanism, "submit: http or kafka")
        ->capture_default_str();
    command
        ->add_option("--mix", options->mix,
                     "submit: operations with optional weights, e.g. addition=3,division "
                     "(default: all four alike)")
        ->delimiter(',');
    command->add_option("--log-collector", target.log_collector_url,
                        "submit: log_collector's base URL; the run then waits until every "
                        "successful job's log record is stored, and fails if one is missing");
    command->add_option("--log-wait", options->log_wait_s, "Seconds to wait for the log records")
        ->capture_default_str();
    command
        ->add_option("--expect-status", target.expect_status,
                     "url: the status every answer must have")
        ->capture_default_str();
    command->add_option("--expect-body", target.expect_body,
                        "url: a piece of text every answer's body must contain");
    command
        ->add_option("--kafka-bootstrap-servers", target.kafka_bootstrap_servers,
                     "kafka-trip: the broker")
        ->capture_default_str();
    command
        ->add_option("--topic", target.trip_topic,
                     "kafka-trip: topic of the trips (created if missing)")
        ->capture_default_str();
    command->add_option("--partitions", target.partitions, "kafka-trip: partitions of a new topic")
        ->capture_default_str();
    command
        ->add_option("--passes", target.passes,
                     "kafka-trip: times each message goes through the broker; after each pass "
                     "the bench's consumer thread sends it on, as a worker answers a request")
        ->check(whole_number(1u, 4u))
        ->capture_default_str();
    command
        ->add_option("--records-per-request", target.records_per_request,
                     "save-log: records in each request (a JSON array when more than one)")
        ->check(whole_number(1u, 200u))
        ->capture_default_str();
    command->add_option("--timeout", options->timeout_s, "Seconds one request may take")
        ->capture_default_str();
    command->add_option("--concurrency,-c", options->concurrency, "Closed loop: requests in flight")
        ->check(whole_number(1u))
        ->capture_default_str();
    command
        ->add_option("--rate,-r", options->rate,
                     "Open loop: requests per second (latency from the intended send time)")
        ->check(CLI::NonNegativeNumber);
    command->add_option("--threads,-t", options->threads, "Client threads")
        ->check(whole_number(1u, 64u))
        ->capture_default_str();
    command
        ->add_option("--connections", options->connections,
                     "HTTP connections in all, split over the threads (0: one per request in "
                     "flight); past them a request waits in line on one, its latency counting "
                     "the wait")
        ->capture_default_str();
    command->add_option("--warmup", options->warmup_s, "Seconds of warm-up, not counted")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    command->add_option("--duration,-d", options->duration_s, "Seconds measured")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    command->add_flag("--json", options->json, "Print the report as JSON");
    command->add_option("--output,-o", options->output, "Also write the JSON report to this file");
    command->add_flag("--quiet,-q", options->quiet, "No progress lines on stderr");
    command->add_flag("--sweep", options->sweep,
                      "Open-loop runs at rising rates up to saturation; CSV and PNG plot");
    command->add_option("--sweep-steps", options->sweep_options.steps)->capture_default_str();
    command
        ->add_option("--sweep-max", options->sweep_options.max_fraction,
                     "The top rate of the sweep as a fraction of the peak")
        ->capture_default_str();
    command
        ->add_option("--peak", options->sweep_options.peak,
                     "The peak rate, if known; otherwise a closed-loop run measures it")
        ->capture_default_str();
    command->add_option("--csv", options->csv, "Where the sweep's CSV goes")->capture_default_str();
    command->add_option("--plot", options->plot, "Where the sweep's PNG goes")
        ->capture_default_str();
}

}  // namespace calcmesh::bench
