// `calcmesh lab fault` against a lab running the real services and Kafka broker: what each
// service does while cluster 3a is cut off, killed or slowed, and that everything recovers once
// the fault is healed. Needs root; the lab is named ct<pid>f and removed in teardown. Every wait
// is bounded; the figures are printed, never asserted against a target.
#include "fault.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "lab.hpp"

namespace calcmesh::lab {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// The lab's job_submitter keeps the default deadline of an http job (worker-timeout-ms).
constexpr auto kWorkerTimeout = std::chrono::milliseconds(5000);

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

struct HttpAnswer {
    int status = 0;  ///< 0: no answer (curl failed or timed out)
    std::string body;
    double seconds = 0;          ///< the whole exchange
    double connect_seconds = 0;  ///< until the TCP connection was established
};

class LabFaultTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        if (geteuid() != 0) {
            return;
        }
        name_ = "ct" + std::to_string(getpid()) + "f";
        std::ostringstream log;
        try {
            lab_up({name_, Datapath::ebpf, true}, log);
        } catch (const std::exception& error) {
            std::cerr << log.str() << error.what() << '\n';
            name_.clear();
        }
    }

    static void TearDownTestSuite() {
        if (name_.empty()) {
            return;
        }
        std::ostringstream log;
        lab_down(name_, log);
    }

    void SetUp() override {
        if (geteuid() != 0) {
            GTEST_SKIP() << "the lab needs root";
        }
        ASSERT_FALSE(name_.empty()) << "lab setup failed";
        ASSERT_TRUE(require_lab(name_).faults.empty()) << "an earlier test left a fault";
    }

    static const Topology& topology() {
        static const Topology kTopology(name_);
        return kTopology;
    }

    static CommandResult calcmesh(std::vector<std::string> arguments) {
        std::vector<std::string> argv{bin_dir() + "/calcmesh", "lab"};
        argv.insert(argv.end(), arguments.begin(), arguments.end());
        argv.insert(argv.end(), {"--name", name_});
        return run(argv);
    }

    // One HTTP request made with curl from inside a pod.
    static HttpAnswer http(const std::string& from_pod, const std::string& url,
                           const std::string& json_body = "", int max_seconds = 10) {
        std::vector<std::string> argv{"curl",       "-s",
                                      "--max-time", std::to_string(max_seconds),
                                      "-w",         "\n%{http_code} %{time_total} %{time_connect}"};
        if (!json_body.empty()) {
            argv.insert(argv.end(), {"-H", "Content-Type: application/json", "-d", json_body});
        }
        argv.push_back(url);
        const auto result = run(argv, launch_options(topology(), from_pod));
        HttpAnswer answer;
        const auto last = result.output.rfind('\n');
        if (last == std::string::npos) {
            return answer;
        }
        answer.body = result.output.substr(0, last);
        std::istringstream(result.output.substr(last + 1)) >> answer.status >> answer.seconds >>
            answer.connect_seconds;
        return answer;
    }

    static std::string url(const std::string& pod, int port, const std::string& target) {
        return fmt::format("http://{}:{}{}", topology().pod(pod).ip.str(), port, target);
    }

    // A job submitted to job_submitter from the client pod, as an outside user would.
    static HttpAnswer submit(const std::string& operation, const std::string& mechanism,
                             bool wait = true) {
        return http("client", url("job-submitter", 8080, "/submit"),
                    fmt::format(R"({{"operation":"{}","a":7,"b":2,"mechanism":"{}","wait":{}}})",
                                operation, mechanism, wait ? "true" : "false"));
    }

    static std::string help_page() { return http("client", url("help-page", 8081, "/")).body; }

    static bool shown_unavailable(const std::string& page, const std::string& worker) {
        return page.find(fmt::format(R"(class="worker unavailable" id="{}")", worker)) !=
               std::string::npos;
    }

    // Polls `done` every 200 ms until it holds or `limit` after `since` passes; returns the
    // seconds from `since` until it held, or a negative number if it never did.
    template <class Fn>
    static double wait_until(Clock::time_point since, std::chrono::seconds limit, Fn done) {
        while (Clock::now() - since < limit) {
            if (done()) {
                return seconds_since(since);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
        return -1;
    }

    static std::string state_text() {
        std::ifstream file(lab_dir(name_) / "state.json");
        return std::string(std::istreambuf_iterator<char>(file), {});
    }

    static bool pod_has_fault_rules(const std::string& pod) {
        const auto options = launch_options(topology(), pod);
        return run_checked({"nft", "list", "ruleset"}, options).find("calcmesh_fault") !=
                   std::string::npos ||
               run({"iptables", "-w", "-S"}, options).output.find("CALCMESH-DELAY") !=
                   std::string::npos;
    }

    static inline std::string name_;
};

TEST_F(LabFaultTest, BadArgumentsAreNamedAndChangeNothing) {
    const auto before = state_text();
    struct Case {
        std::vector<std::string> arguments;
        const char* named;
    };
    const Case cases[] = {
        {{"fault", "partition", "c9-nowhere"}, "cluster: unknown cluster 'c9-nowhere'"},
        {{"fault", "partition", "c3a-workers", "--for", "10parsecs"}, "--for: '10parsecs'"},
        {{"fault", "partition", "c3a-workers", "--for", "0s"}, "--for: '0s'"},
        {{"fault", "delay", "c2-kafka", "fast"}, "delay: 'fast'"},
        {{"fault", "delay", "c2-kafka", "120s"}, "delay: 120000 ms is out of range"},
        {{"fault", "kill", "no-such-service"}, "service: unknown service or pod 'no-such-service'"},
        {{"fault", "kill", "client"}, "service: unknown service or pod 'client'"},
        {{"fault", "heal", "f99"}, "fault: no fault 'f99'"},
    };
    for (const auto& c : cases) {
        const auto result = calcmesh(c.arguments);
        EXPECT_EQ(result.exit_code, 1) << c.named;
        EXPECT_NE(result.errors.find(c.named), std::string::npos)
            << "expected '" << c.named << "' in: " << result.errors;
        EXPECT_EQ(state_text(), before) << c.named;
    }
    const auto no_lab = run({bin_dir() + "/calcmesh", "lab", "fault", "status", "--name", "nolab"});
    EXPECT_EQ(no_lab.exit_code, 1);
    EXPECT_NE(no_lab.errors.find("no lab named 'nolab'"), std::string::npos) << no_lab.errors;

    // The same fault twice: refused, and the first stays as it was.
    ASSERT_EQ(calcmesh({"fault", "partition", "c3a-workers"}).exit_code, 0);
    const auto with_fault = state_text();
    const auto again = calcmesh({"fault", "partition", "c3a-workers"});
    EXPECT_EQ(again.exit_code, 1);
    EXPECT_NE(again.errors.find("partition c3a-workers is in force already"), std::string::npos)
        << again.errors;
    EXPECT_EQ(state_text(), with_fault);
    ASSERT_EQ(calcmesh({"fault", "heal"}).exit_code, 0);
    EXPECT_FALSE(pod_has_fault_rules("addition-worker"));
}

// The case study's partition: cluster 3a (addition and subtraction workers) cut off from the
// client cluster, Kafka's cluster and 3b.
TEST_F(LabFaultTest, PartitionedWorkersFailFastAndEverythingArrivesAfterTheHeal) {
    // Before: both mechanisms work, so Kafka's consumers have their partitions.
    for (const char* operation : {"addition", "subtraction"}) {
        for (const char* mechanism : {"http", "kafka"}) {
            const auto job = submit(operation, mechanism);
            ASSERT_EQ(job.status, 200) << operation << " " << mechanism << ": " << job.body;
        }
    }

    const auto partitioned = calcmesh({"fault", "partition", "c3a-workers"});
    ASSERT_EQ(partitioned.exit_code, 0) << partitioned.errors;
    const auto status = calcmesh({"fault", "status"});
    EXPECT_NE(status.output.find("partition c3a-workers"), std::string::npos) << status.output;
    EXPECT_TRUE(pod_has_fault_rules("addition-worker"));
    EXPECT_TRUE(pod_has_fault_rules("log-collector"));

    // Inside the cluster the workers still serve: these records wait in addition_worker's queue,
    // since log_collector is on the other side.
    const auto prefix = fmt::format("cut-{}-", getpid());
    constexpr int kLocalJobs = 20;
    for (int i = 0; i < kLocalJobs; ++i) {
        const auto answer = http("subtraction-worker",
                                 url("addition-worker", 8091,
                                     fmt::format("/compute?a={}&b=1&job_id={}{}", i, prefix, i)));
        ASSERT_EQ(answer.status, 200) << "inside c3a: " << answer.body;
    }

    // http jobs for the cut-off workers fail within their deadline, naming the worker.
    for (const char* operation : {"addition", "subtraction"}) {
        const auto job = submit(operation, "http");
        const auto worker = std::string(operation) + "_worker";
        EXPECT_TRUE(job.status == 502 || job.status == 504) << job.status << " " << job.body;
        EXPECT_NE(job.body.find(worker), std::string::npos) << job.body;
        EXPECT_LE(job.seconds, std::chrono::duration<double>(kWorkerTimeout).count() + 1.0);
        std::cout << fmt::format(
            "[figure] http {} job during the partition: {} after {:.3f} s: {}\n", operation,
            job.status, job.seconds, job.body);
    }
    // Cluster 3b is not cut off.
    EXPECT_EQ(submit("multiplication", "http").status, 200);

    // kafka jobs are taken by the broker and wait for the workers.
    std::vector<std::string> kafka_jobs;
    for (int i = 0; i < 3; ++i) {
        for (const char* operation : {"addition", "subtraction"}) {
            const auto job = submit(operation, "kafka", false);
            ASSERT_EQ(job.status, 202) << job.body;
            kafka_jobs.push_back(nlohmann::json::parse(job.body).at("job_id").get<std::string>());
        }
    }

    const auto page = help_page();
    EXPECT_TRUE(shown_unavailable(page, "addition_worker")) << page;
    EXPECT_TRUE(shown_unavailable(page, "subtraction_worker")) << page;
    EXPECT_FALSE(shown_unavailable(page, "multiplication_worker")) << page;

    const auto healed = calcmesh({"fault", "heal"});
    ASSERT_EQ(healed.exit_code, 0) << healed.errors;
    const auto heal_time = Clock::now();
    EXPECT_FALSE(pod_has_fault_rules("addition-worker"));
    EXPECT_FALSE(pod_has_fault_rules("log-collector"));

    const auto http_back = wait_until(heal_time, std::chrono::seconds(30), [] {
        return submit("addition", "http").status == 200 &&
               submit("subtraction", "http").status == 200;
    });
    EXPECT_GE(http_back, 0) << "http jobs for c3a did not recover";

    int completed = 0;
    const auto kafka_done = wait_until(heal_time, std::chrono::seconds(120), [&] {
        completed = 0;
        for (const auto& id : kafka_jobs) {
            const auto job = http("client", url("job-submitter", 8080, "/jobs/" + id));
            const auto json = nlohmann::json::parse(job.body, nullptr, false);
            completed += json.is_object() && json.value("status", "") == "completed";
        }
        return completed == static_cast<int>(kafka_jobs.size());
    });
    EXPECT_EQ(completed, static_cast<int>(kafka_jobs.size())) << "kafka jobs left pending";

    int delivered = 0;
    const auto records_in = wait_until(heal_time, std::chrono::seconds(60), [&] {
        const auto logs = nlohmann::json::parse(
            http("client", url("log-collector", 8082, "/logs")).body, nullptr, false);
        delivered = 0;
        for (const auto& record : logs) {
            delivered += record.value("job_id", "").rfind(prefix, 0) == 0;
        }
        return delivered >= kLocalJobs;
    });
    EXPECT_EQ(delivered, kLocalJobs) << "log records made during the partition";

    const auto help_back = wait_until(heal_time, std::chrono::seconds(30), [] {
        const auto page = help_page();
        return !shown_unavailable(page, "addition_worker") &&
               !shown_unavailable(page, "subtraction_worker");
    });
    EXPECT_GE(help_back, 0) << "help_page still shows c3a unavailable";

    std::cout << fmt::format(
        "[figure] after the heal: http jobs for c3a answered after {:.1f} s; {}/{} kafka jobs "
        "submitted during the partition completed after {:.1f} s; {}/{} log records made during "
        "the partition stored after {:.1f} s; help_page shows c3a available after {:.1f} s (from "
        "the end of `lab fault heal`; checked one after another every 0.2 s, so each figure is an "
        "upper bound)\n",
        http_back, completed, kafka_jobs.size(), kafka_done, delivered, kLocalJobs, records_in,
        help_back);
}

TEST_F(LabFaultTest, AKilledWorkerIsNamedAtOnceAndHealStartsItAgain) {
    const auto before = require_lab(name_);
    const auto old = std::find_if(before.processes.begin(), before.processes.end(),
                                  [](const LabProcess& p) { return p.name == "addition-worker"; });
    ASSERT_NE(old, before.processes.end());

    const auto killed = calcmesh({"fault", "kill", "addition-worker"});
    ASSERT_EQ(killed.exit_code, 0) << killed.errors;
    EXPECT_EQ(process_start_time(old->pid), 0u) << "the worker still runs";
    EXPECT_NE(calcmesh({"status"})
                  .output.find("addition-worker pid " + std::to_string(old->pid) + " EXITED"),
              std::string::npos);

    const auto job = submit("addition", "http");
    EXPECT_EQ(job.status, 502) << job.body;
    EXPECT_NE(job.body.find("addition_worker is unavailable"), std::string::npos) << job.body;
    std::cout << fmt::format(
        "[figure] http addition job with its worker killed: {} after {:.3f} s\n", job.status,
        job.seconds);
    EXPECT_TRUE(shown_unavailable(help_page(), "addition_worker"));

    const auto heal_time = Clock::now();
    const auto healed = calcmesh({"fault", "heal"});
    ASSERT_EQ(healed.exit_code, 0) << healed.errors;
    const auto restart_seconds = seconds_since(heal_time);
    const auto after = require_lab(name_);
    const auto restarted =
        std::find_if(after.processes.begin(), after.processes.end(),
                     [](const LabProcess& p) { return p.name == "addition-worker"; });
    ASSERT_NE(restarted, after.processes.end());
    EXPECT_NE(restarted->pid, old->pid);
    EXPECT_EQ(process_start_time(restarted->pid), restarted->start_time);
    EXPECT_EQ(submit("addition", "http").status, 200);
    EXPECT_FALSE(shown_unavailable(help_page(), "addition_worker"));
    std::cout << fmt::format(
        "[figure] `lab fault heal` restarted addition-worker and saw it ready in {:.2f} s\n",
        restart_seconds);
}

TEST_F(LabFaultTest, APartitionForADurationHealsItself) {
    const auto made = Clock::now();
    const auto partitioned = calcmesh({"fault", "partition", "c3a-workers", "--for", "3s"});
    ASSERT_EQ(partitioned.exit_code, 0) << partitioned.errors;
    EXPECT_NE(partitioned.output.find("heals at"), std::string::npos) << partitioned.output;
    const auto cut = http("job-submitter", url("addition-worker", 8091, "/healthz"), "", 1);
    EXPECT_EQ(cut.status, 0) << "c1 still reaches c3a";

    const auto healed_after = wait_until(made, std::chrono::seconds(20),
                                         [] { return require_lab(name_).faults.empty(); });
    ASSERT_GE(healed_after, 0) << "the partition did not heal itself";
    EXPECT_GE(healed_after, 3.0);
    EXPECT_FALSE(pod_has_fault_rules("addition-worker"));
    EXPECT_EQ(http("job-submitter", url("addition-worker", 8091, "/healthz")).status, 200);
    for (const auto& process : require_lab(name_).processes) {
        EXPECT_EQ(process.name.find("timer"), std::string::npos) << process.name;
    }
    std::cout << fmt::format("[figure] `partition --for 3s` healed itself after {:.1f} s\n",
                             healed_after);
}

TEST_F(LabFaultTest, ADelayedClusterAnswersLaterAndOnlyAcrossClusters) {
    constexpr double kDelay = 0.1;
    const auto across = [] {
        return http("job-submitter", url("addition-worker", 8091, "/healthz"));
    };
    const auto inside = [] {
        return http("subtraction-worker", url("addition-worker", 8091, "/healthz"));
    };
    const auto before = across();
    ASSERT_EQ(before.status, 200);

    const auto delayed = calcmesh({"fault", "delay", "c3a-workers", "100ms"});
    ASSERT_EQ(delayed.exit_code, 0) << delayed.errors;
    EXPECT_NE(calcmesh({"fault", "status"}).output.find("delay c3a-workers 100 ms"),
              std::string::npos);
    // The SYN-ACK leaves c3a, so establishing the connection takes the delay once more.
    const auto during = across();
    EXPECT_EQ(during.status, 200);
    EXPECT_GE(during.connect_seconds, kDelay);
    const auto local = inside();
    EXPECT_EQ(local.status, 200);
    EXPECT_LT(local.connect_seconds, kDelay) << "traffic inside the cluster was delayed";
    const auto job = submit("addition", "http");
    EXPECT_EQ(job.status, 200) << job.body;
    const auto elapsed_ms = nlohmann::json::parse(job.body).value("elapsed_ms", 0.0);
    EXPECT_GE(elapsed_ms, kDelay * 1000);

    ASSERT_EQ(calcmesh({"fault", "heal"}).exit_code, 0);
    EXPECT_FALSE(pod_has_fault_rules("addition-worker"));
    const auto after = across();
    EXPECT_EQ(after.status, 200);
    EXPECT_LT(after.connect_seconds, kDelay);
    std::cout << fmt::format(
        "[figure] delay c3a-workers 100ms: TCP connect c1 -> c3a {:.1f} ms before, {:.1f} ms "
        "during, {:.1f} ms after; inside c3a {:.1f} ms during; http addition job {:.1f} ms "
        "during\n",
        before.connect_seconds * 1000, during.connect_seconds * 1000, after.connect_seconds * 1000,
        local.connect_seconds * 1000, elapsed_ms);
}

TEST_F(LabFaultTest, APartitionCutsEveryDatapathAndOnlyBetweenClusters) {
    for (const auto datapath : all_datapaths()) {
        SCOPED_TRACE(std::string(to_string(datapath)));
        lab_switch(name_, datapath);
        ASSERT_EQ(calcmesh({"fault", "partition", "c3a-workers"}).exit_code, 0);
        EXPECT_EQ(http("job-submitter", url("addition-worker", 8091, "/healthz"), "", 1).status, 0);
        EXPECT_EQ(http("addition-worker", url("log-collector", 8082, "/healthz"), "", 1).status, 0);
        EXPECT_EQ(http("subtraction-worker", url("addition-worker", 8091, "/healthz")).status, 200);
        EXPECT_EQ(http("job-submitter", url("division-worker", 8094, "/healthz")).status, 200);
        EXPECT_EQ(http("client", url("addition-worker", 8091, "/healthz")).status, 200)
            << "the outside world is no cluster";
        ASSERT_EQ(calcmesh({"fault", "heal"}).exit_code, 0);
        EXPECT_EQ(http("job-submitter", url("addition-worker", 8091, "/healthz")).status, 200);
    }
    lab_switch(name_, Datapath::ebpf);
}

}  // namespace
}  // namespace calcmesh::lab
