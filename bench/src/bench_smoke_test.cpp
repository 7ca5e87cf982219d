// A short run of `calcmesh bench` against the real services: proves the benchmark works end to
// end (real processes, sockets, the real Kafka broker of the test run) and that its JSON report
// has every field scripts rely on. It measures nothing: the figures are in docs/performance.md.

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "calcmesh/arithmetic.hpp"
#include "calcmesh/bench/target.hpp"
#include "kafka_system.hpp"
#include "service_process.hpp"

namespace calcmesh::testing {
namespace {

using nlohmann::json;

struct BenchRun {
    int exit_code = -1;
    std::string out;
    std::string err;
};

/// Runs `calcmesh bench <args>` and collects its exit code, stdout and stderr.
BenchRun run_bench(const std::filesystem::path& dir, const std::string& args) {
    const auto err_file = dir / "bench.err";
    const auto command = bin_dir() + "/calcmesh bench " + args + " 2>" + err_file.string();
    BenchRun run;
    FILE* pipe = ::popen(command.c_str(), "r");
    if (!pipe) {
        ADD_FAILURE() << "cannot run " << command;
        return run;
    }
    std::array<char, 4096> buffer{};
    std::size_t got = 0;
    while ((got = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
        run.out.append(buffer.data(), got);
    }
    const int status = ::pclose(pipe);
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream in(err_file);
    run.err.assign(std::istreambuf_iterator<char>(in), {});
    return run;
}

/// Parses the report and checks the fields every report has.
json checked_report(const BenchRun& run) {
    EXPECT_EQ(run.exit_code, 0) << run.err;
    auto report = json::parse(run.out, nullptr, false);
    EXPECT_TRUE(report.is_object()) << run.out;
    if (!report.is_object()) {
        return json::object();
    }
    for (const char* field :
         {"target", "mode", "threads", "requests", "ok", "errors", "wrong", "errors_by_kind",
          "seconds", "throughput_rps", "latency_ms", "checks"}) {
        EXPECT_TRUE(report.contains(field)) << field << " missing in " << run.out;
    }
    const auto& latency = report["latency_ms"];
    double previous = 0;
    for (const char* field : {"min", "p50", "p90", "p99", "p99_9", "max"}) {
        EXPECT_TRUE(latency[field].is_number()) << field;
        EXPECT_GE(latency.value(field, 0.0), previous) << field << " in " << latency.dump();
        previous = latency.value(field, 0.0);
    }
    EXPECT_GT(report.value("ok", 0), 0);
    EXPECT_EQ(report.value("wrong", -1), 0);
    EXPECT_GT(report.value("throughput_rps", 0.0), 0.0);
    return report;
}

/// log_collector, the four workers and job_submitter over HTTP.
struct HttpSystem {
    HttpSystem() : dir("bench-smoke") {
        collector = std::make_unique<ServiceProcess>(
            "log_collector",
            std::vector<std::string>{"--data-dir", (dir.path() / "data").string(), "--access-log",
                                     "false"},
            dir.path());
        std::vector<std::string> urls = {"--access-log", "false"};
        for (const auto operation : kAllOperations) {
            const std::string name(operation_name(operation));
            workers.push_back(std::make_unique<ServiceProcess>(
                "worker",
                std::vector<std::string>{"--operation", name, "--log-collector-url",
                                         collector->url(), "--access-log", "false"},
                dir.path()));
            urls.insert(urls.end(), {"--" + name + "-worker-url", workers.back()->url()});
        }
        submitter = std::make_unique<ServiceProcess>("job_submitter", urls, dir.path());
    }
    TempDir dir;
    std::unique_ptr<ServiceProcess> collector;
    std::vector<std::unique_ptr<ServiceProcess>> workers;
    std::unique_ptr<ServiceProcess> submitter;
};

TEST(BenchSmoke, HttpJobsClosedLoopWithEveryLogRecordStored) {
    HttpSystem system;
    const auto report = checked_report(run_bench(
        system.dir.path(), "--target submit --url " + system.submitter->url() +
                               " --mechanism http" + " --log-collector " + system.collector->url() +
                               " --concurrency 8 --warmup 0.2 --duration 1 --json"));
    EXPECT_EQ(report["mode"], "closed");
    EXPECT_EQ(report["concurrency"], 8);
    EXPECT_EQ(report["target"]["kind"], "submit");
    EXPECT_EQ(report["target"]["mechanism"], "http");
    EXPECT_EQ(report["errors"], 0) << report["errors_by_kind"].dump();
    EXPECT_GE(report.value("ok", 0), 100);
    const auto& checks = report["checks"];
    EXPECT_GE(checks.value("log_records_stored", 0.0), checks.value("log_records_expected", 1.0));
    EXPECT_GE(checks.value("log_records_expected", 0), report.value("ok", 0));
}

TEST(BenchSmoke, OpenLoopHoldsItsRateAndASweepDrawsItsPlot) {
    HttpSystem system;
    const auto healthz = system.submitter->url() + "/healthz --expect-body '\"status\":\"ok\"'";
    const auto report = checked_report(run_bench(
        system.dir.path(),
        "--target url --url " + healthz + " --rate 300 --warmup 0.2 --duration 1 --json"));
    EXPECT_EQ(report["mode"], "open");
    EXPECT_EQ(report["rate_rps"], 300.0);
    EXPECT_NEAR(report.value("ok", 0), 300, 15);

    const auto csv = system.dir.path() / "sweep.csv";
    const auto png = system.dir.path() / "sweep.png";
    const auto sweep =
        run_bench(system.dir.path(), "--target url --url " + healthz +
                                         " --sweep --peak 400 --sweep-steps 2 --sweep-max 1"
                                         " --warmup 0.1 --duration 0.5 --json --csv " +
                                         csv.string() + " --plot " + png.string());
    ASSERT_EQ(sweep.exit_code, 0) << sweep.err;
    const auto points = json::parse(sweep.out)["points"];
    ASSERT_EQ(points.size(), 2u);
    EXPECT_EQ(points[1]["rate_rps"], 400.0);
    std::ifstream lines(csv);
    std::string header;
    std::getline(lines, header);
    EXPECT_EQ(header, "offered_rps,throughput_rps,p50_ms,p90_ms,p99_ms,p99_9_ms,max_ms,errors");
    EXPECT_GT(std::filesystem::file_size(png), 1000u);
}

TEST(BenchSmoke, SaveLogRecordsAreAcknowledged) {
    HttpSystem system;
    const auto report = checked_report(
        run_bench(system.dir.path(), "--target save-log --url " + system.collector->url() +
                                         " --concurrency 16 --warmup 0.1 --duration 0.5 --json"));
    EXPECT_EQ(report["target"]["kind"], "save-log");
    EXPECT_EQ(report["errors"], 0) << report["errors_by_kind"].dump();

    // Batches: every request's records are acknowledged, and all of them are stored.
    const auto stored = [&] {
        return bench::prometheus_value(get(system.collector->url() + "/metrics").body,
                                       "calcmesh_log_records_stored_total")
            .value_or(-1);
    };
    const auto stored_before = stored();
    const auto batches = checked_report(
        run_bench(system.dir.path(), "--target save-log --url " + system.collector->url() +
                                         " --records-per-request 7 --concurrency 4 --warmup 0 "
                                         "--duration 0.3 --json"));
    EXPECT_EQ(batches["target"]["records_per_request"], 7);
    EXPECT_EQ(batches["errors"], 0) << batches["errors_by_kind"].dump();
    EXPECT_EQ(stored() - stored_before, 7 * batches["ok_with_warmup"].get<double>());
}

TEST(BenchSmoke, RefusesToReportARunWithWrongAnswers) {
    HttpSystem system;
    const auto run =
        run_bench(system.dir.path(), "--target url --url " + system.submitter->url() +
                                         "/healthz --expect-body no-such-text --concurrency 2"
                                         " --warmup 0 --duration 0.3 --json");
    EXPECT_EQ(run.exit_code, 3);
    EXPECT_EQ(run.out, "") << "no report at all";
    EXPECT_NE(run.err.find("refusing to report this run"), std::string::npos) << run.err;
    EXPECT_NE(run.err.find("unexpected_body"), std::string::npos) << run.err;
}

TEST(BenchSmoke, KafkaTripAndKafkaJobs) {
    const std::vector<std::string> quiet = {"--access-log", "false"};
    KafkaSystem system("bench-smoke-kafka", shared_bootstrap(),
                       {kAllOperations.begin(), kAllOperations.end()}, quiet, quiet);
    const auto& dir = system.dir();
    const auto trips = system.topics().results() + "_trips";

    const auto trip = checked_report(run_bench(
        dir, "--target kafka-trip --kafka-bootstrap-servers " + system.bootstrap() + " --topic " +
                 trips + " --concurrency 4 --warmup 0.2 --duration 1 --json"));
    EXPECT_EQ(trip["target"]["kind"], "kafka-trip");
    EXPECT_EQ(trip["errors"], 0) << trip["errors_by_kind"].dump();
    const auto chain = checked_report(run_bench(
        dir, "--target kafka-trip --kafka-bootstrap-servers " + system.bootstrap() + " --topic " +
                 trips + " --passes 2 --concurrency 4 --warmup 0.2 --duration 1 --json"));
    EXPECT_EQ(chain["target"]["passes"], 2);
    EXPECT_EQ(chain["errors"], 0) << chain["errors_by_kind"].dump();

    const auto jobs = checked_report(
        run_bench(dir, "--target submit --mechanism kafka --url " + system.submitter()->url() +
                           " --log-collector " + system.collector()->url() +
                           " --concurrency 8 --warmup 0.2 --duration 1 --json"));
    EXPECT_EQ(jobs["target"]["mechanism"], "kafka");
    EXPECT_EQ(jobs["errors"], 0) << jobs["errors_by_kind"].dump();
}

}  // namespace
}  // namespace calcmesh::testing
