#include "bench.hpp"

#include <fmt/format.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <ostream>
#include <stdexcept>

#include "bench_catalog.hpp"
#include "lab.hpp"

namespace calcmesh::lab {

namespace fs = std::filesystem;

namespace {

constexpr int kPerfPort = 7000;
constexpr int kIperfPort = 5201;
constexpr int kSubmitterPort = 8080;

std::string now_utc() {
    const auto now = std::time(nullptr);
    char text[64];
    std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
    return text;
}

nlohmann::json environment() {
    utsname uts{};
    uname(&uts);
    std::ifstream loadavg("/proc/loadavg");
    double load = NAN;
    loadavg >> load;
    return {{"kernel", uts.release},
            {"cpus", sysconf(_SC_NPROCESSORS_ONLN)},
            {"load_average", load},
            {"date", now_utc()}};
}

class Bench {
  public:
    Bench(const BenchOptions& options, std::ostream& log)
        : options_(options), log_(log), topology_(options.name) {}

    nlohmann::json run() {
        // Services only to measure jobs; never the flow stage, which would be measured with it.
        lab_up({options_.name, Datapath::native, options_.job_rounds > 0, false}, log_);
        try {
            measure();
        } catch (...) {
            lab_down(options_.name, log_);
            throw;
        }
        lab_down(options_.name, log_);
        return {{"environment", environment()},
                {"options",
                 {{"rounds", options_.rounds},
                  {"stream_rounds", options_.stream_rounds},
                  {"rr_transactions", options_.rr_transactions},
                  {"crr_transactions", options_.crr_transactions},
                  {"stream_seconds", options_.stream_seconds},
                  {"cpu", options_.cpu},
                  {"job_rounds", options_.job_rounds},
                  {"job_seconds", options_.job_seconds}}},
                {"measurements", measurements_},
                {"kernel_forwarded", forwarded_}};
    }

  private:
    void start_servers() {
        auto state = require_lab(options_.name);
        LaunchOptions pinned;
        pinned.cpu = options_.cpu;
        for (const auto& pair : kPairs) {
            const std::string pod = pair.server;
            if (state_has(state, "perf-" + pod)) {
                continue;
            }
            start_process(state, pod, "perf-" + pod,
                          {bin_dir() + "/lab_perf", "server", "--port", std::to_string(kPerfPort)},
                          pinned);
            start_process(state, pod, "iperf3-" + pod,
                          {"iperf3", "-s", "-p", std::to_string(kIperfPort)}, pinned);
        }
    }

    static bool state_has(const LabState& state, const std::string& name) {
        return std::any_of(state.processes.begin(), state.processes.end(),
                           [&](const LabProcess& process) { return process.name == name; });
    }

    std::string in_pod(const std::string& pod, const std::vector<std::string>& argv,
                       bool pinned = true) {
        auto options = launch_options(topology_, pod);
        if (pinned) {
            options.cpu = options_.cpu;
        }
        const auto result = lab::run(argv, options);
        if (result.exit_code != 0) {
            throw std::runtime_error(fmt::format("{} in pod {} failed: {}{}", argv[0], pod,
                                                 result.errors, result.output));
        }
        return result.output;
    }

    void record(Datapath datapath, int round, const char* workload, const Pair& pair,
                double value) {
        measurements_.push_back({{"datapath", to_string(datapath)},
                                 {"round", round},
                                 {"workload", workload},
                                 {"pair", pair.id},
                                 {"value", value}});
    }

    void measure_pair(Datapath datapath, int round, const Pair& pair) {
        const auto server = topology_.pod(pair.server).ip.str();
        const auto perf = [&](const char* test, int transactions) {
            return nlohmann::json::parse(
                in_pod(pair.client,
                       {bin_dir() + "/lab_perf", test, "--host", server, "--port",
                        std::to_string(kPerfPort), "--transactions", std::to_string(transactions),
                        "--warmup", std::to_string(std::max(1, transactions / 20))}));
        };
        record(datapath, round, "tcp_rr", pair,
               perf("rr", options_.rr_transactions).at("mean_us").get<double>());
        record(datapath, round, "tcp_crr", pair,
               perf("crr", options_.crr_transactions).at("mean_us").get<double>());
        if (round <= options_.stream_rounds) {
            const auto iperf = nlohmann::json::parse(
                in_pod(pair.client, {"iperf3", "-c", server, "-p", std::to_string(kIperfPort), "-t",
                                     std::to_string(options_.stream_seconds), "-J"}));
            record(datapath, round, "tcp_stream", pair,
                   iperf.at("end").at("sum_received").at("bits_per_second").get<double>() / 1e9);
        }
    }

    // The services run unpinned, as they would on a node; so does the load generator, which
    // checks every answer and fails on a wrong one.
    void measure_jobs(Datapath datapath, int round) {
        const auto url =
            fmt::format("http://{}:{}", topology_.pod(kJobsPair.server).ip.str(), kSubmitterPort);
        for (const auto& [mechanism, workload] :
             {std::pair{"http", "jobs_http"}, std::pair{"kafka", "jobs_kafka"}}) {
            const auto report = nlohmann::json::parse(
                in_pod(kJobsPair.client,
                       {bin_dir() + "/calcmesh", "bench", "--target", "submit", "--url", url,
                        "--mechanism", mechanism, "--concurrency", "16", "--warmup", "1",
                        "--duration", std::to_string(options_.job_seconds), "--json", "--quiet"},
                       false));
            record(datapath, round, workload, kJobsPair, report.at("throughput_rps").get<double>());
        }
    }

    std::uint64_t forwarded_by_kernels() {
        std::uint64_t total = 0;
        for (const auto& node : topology_.nodes()) {
            total += kernel_forwarded(topology_.netns(node.name));
        }
        return total;
    }

    void measure() {
        start_servers();
        const auto& datapaths = all_datapaths();
        const auto count = static_cast<int>(datapaths.size());
        for (int round = 1; round <= options_.rounds; ++round) {
            const auto started = std::chrono::steady_clock::now();
            for (int i = 0; i < count; ++i) {
                const auto datapath = datapaths[static_cast<std::size_t>((round - 1 + i) % count)];
                lab_switch(options_.name, datapath);
                const auto before = forwarded_by_kernels();
                for (const auto& pair : kPairs) {
                    measure_pair(datapath, round, pair);
                }
                if (round <= options_.job_rounds) {
                    measure_jobs(datapath, round);
                }
                forwarded_.push_back({{"datapath", to_string(datapath)},
                                      {"round", round},
                                      {"packets", forwarded_by_kernels() - before}});
            }
            log_ << fmt::format(
                        "round {}/{} done in {:.0f} s\n", round, options_.rounds,
                        std::chrono::duration<double>(std::chrono::steady_clock::now() - started)
                            .count())
                 << std::flush;
        }
    }

    const BenchOptions& options_;
    std::ostream& log_;
    Topology topology_;
    nlohmann::json measurements_ = nlohmann::json::array();
    nlohmann::json forwarded_ = nlohmann::json::array();
};

}  // namespace

void make_smoke(BenchOptions& options) {
    options.rounds = 1;
    options.stream_rounds = 1;
    options.rr_transactions = 200;
    options.crr_transactions = 20;
    options.stream_seconds = 1;
    options.job_rounds = 1;
    options.job_seconds = 1;
}

void run_bench(const BenchOptions& options, const std::string& command_line, std::ostream& log) {
    nlohmann::json data;
    if (!options.from_data.empty()) {
        std::ifstream file(options.from_data);
        if (!file) {
            throw std::runtime_error("cannot read " + options.from_data);
        }
        data = nlohmann::json::parse(file);
    } else {
        data = Bench(options, log).run();
        data["command"] = command_line;
    }
    const auto json_path = fs::path(options.report).replace_extension(".json");
    if (options.from_data.empty() || fs::path(options.from_data) != json_path) {
        fs::create_directories(fs::absolute(json_path).parent_path());
        std::ofstream(json_path) << data.dump(1) << '\n';
    }
    write_report(data, options.report);
    log << fmt::format("wrote {}, {} and {}\n", options.report, json_path.string(),
                       fs::path(options.report).replace_extension(".png").string());
}

}  // namespace calcmesh::lab
