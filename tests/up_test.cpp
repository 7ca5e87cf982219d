// `calcmesh up` as a user runs it: the whole system, then Ctrl-C.

#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "service_process.hpp"

namespace calcmesh::testing {
namespace {

using nlohmann::json;

/// The pids of the direct children of `pid`, from /proc.
std::set<pid_t> children_of(pid_t pid) {
    std::set<pid_t> children;
    for (const auto& task :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
        std::ifstream in(task.path() / "children");
        pid_t child = 0;
        while (in >> child) {
            children.insert(child);
        }
    }
    return children;
}

bool alive(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) {
        return false;
    }
    // A zombie has ended; its parent just has not collected it.
    const auto state = line.substr(line.rfind(')') + 2, 1);
    return state != "Z";
}

/// How a test runs `calcmesh up`.
struct UpRunOptions {
    bool kafka = false;
    std::vector<std::string> extra_args;
    /// false: the constructor returns as soon as `calcmesh up` runs, without waiting for it.
    bool wait_until_up = true;
};

/// `calcmesh up` on free ports and a run directory of its own, once it says it is up.
class UpRun {
  public:
    explicit UpRun(const UpRunOptions& run = {}) : dir_("up") {
        std::string worker_ports;
        for (int i = 0; i < 4; ++i) {
            worker_ports += (i ? "," : "") + std::to_string(free_port());
        }
        ChildProcess::Options options;
        options.argv = {bin_dir() + "/calcmesh",
                        "up",
                        "--kafka",
                        run.kafka ? "true" : "false",
                        "--kafka-port",
                        std::to_string(kafka_port),
                        "--run-dir",
                        (dir_.path() / "run").string(),
                        "--submitter-port",
                        std::to_string(submitter_port),
                        "--help-port",
                        std::to_string(help_port),
                        "--collector-port",
                        std::to_string(collector_port),
                        "--worker-ports",
                        worker_ports};
        options.argv.insert(options.argv.end(), run.extra_args.begin(), run.extra_args.end());
        options.output_file = (dir_.path() / "up.log").string();
        process_ = std::make_unique<ChildProcess>(options);
        if (run.wait_until_up &&
            !eventually([&] { return output().find("calcmesh is up") != std::string::npos; },
                        std::chrono::seconds(60))) {
            throw std::runtime_error("calcmesh up did not come up:\n" + output());
        }
        children = children_of(process_->pid());
    }

    std::string output() const {
        std::ifstream in(dir_.path() / "up.log");
        return {std::istreambuf_iterator<char>(in), {}};
    }
    /// What `calcmesh up` says of its services in the run directory's status.json.
    json status() const {
        std::ifstream in(dir_.path() / "run" / "status.json");
        return json::parse(in, nullptr, false);
    }
    /// The service's entry in status.json.
    json service(const std::string& name) const {
        const auto all = status();
        for (const auto& entry : all["services"]) {
            if (entry["name"] == name) {
                return entry;
            }
        }
        return {};
    }
    std::string url(unsigned short port) const {
        return "http://127.0.0.1:" + std::to_string(port);
    }
    ChildProcess& process() { return *process_; }

    const unsigned short submitter_port = free_port();
    const unsigned short help_port = free_port();
    const unsigned short collector_port = free_port();
    const unsigned short kafka_port = free_port();
    std::set<pid_t> children;

  private:
    TempDir dir_;
    std::unique_ptr<ChildProcess> process_;
};

TEST(Up, RunsTheWholeSystemAndStopsCleanly) {
    UpRun up;
    EXPECT_EQ(up.children.size(), 7u) << up.output();

    std::vector<std::string> job_ids;
    for (const auto& [operation, expected] :
         {std::pair{"addition", 13}, std::pair{"subtraction", 7}, std::pair{"multiplication", 30},
          std::pair{"division", 3}}) {
        const auto response =
            post(up.url(up.submitter_port) + "/submit",
                 json{{"operation", operation}, {"a", 10}, {"b", 3}, {"mechanism", "http"}}.dump());
        ASSERT_EQ(response.status, 200u) << response.body;
        const auto job = json::parse(response.body);
        EXPECT_EQ(job["result"], expected);
        job_ids.push_back(job["job_id"]);
    }
    ASSERT_TRUE(eventually([&] {
        const auto records = json::parse(get(up.url(up.collector_port) + "/logs").body);
        std::set<std::string> logged;
        for (const auto& record : records) {
            logged.insert(record["job_id"].get<std::string>());
        }
        return std::all_of(job_ids.begin(), job_ids.end(),
                           [&](const auto& id) { return logged.contains(id); });
    }));
    const auto page = get(up.url(up.help_port) + "/");
    EXPECT_EQ(page.status, 200u);
    for (const auto* worker :
         {"addition_worker", "subtraction_worker", "multiplication_worker", "division_worker"}) {
        EXPECT_NE(page.body.find(std::string("id=\"") + worker + "\""), std::string::npos);
    }
    EXPECT_EQ(page.body.find("unavailable</strong>"), std::string::npos);

    up.process().signal(SIGINT);
    const auto status = up.process().wait_for(std::chrono::seconds(60));
    ASSERT_TRUE(status) << up.output();
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << describe_wait_status(*status);
    for (const auto child : up.children) {
        EXPECT_FALSE(alive(child)) << "child " << child << " outlived calcmesh up";
    }
    EXPECT_NE(up.output().find("stopped log_collector (exited with status 0)"), std::string::npos)
        << up.output();
}

TEST(Up, WithRestartNeverStopsEverythingWhenAChildDies) {
    UpRun up({.extra_args = {"--restart", "never"}});
    ASSERT_FALSE(up.children.empty());
    // Kill one child the hard way, as a crash would.
    ASSERT_EQ(::kill(*up.children.begin(), SIGKILL), 0);
    const auto status = up.process().wait_for(std::chrono::seconds(60));
    ASSERT_TRUE(status);
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1);
    EXPECT_NE(up.output().find("killed by signal 9 (Killed) unexpectedly; stopping the rest"),
              std::string::npos)
        << up.output();
    for (const auto child : up.children) {
        EXPECT_FALSE(alive(child)) << "child " << child << " outlived calcmesh up";
    }
}

/// Kills the process `calcmesh up` runs as `name` with SIGKILL, as a crash would, and waits
/// until it has been reaped; returns its pid.
pid_t crash(UpRun& up, const std::string& name) {
    const pid_t pid = up.service(name)["pid"].get<pid_t>();
    EXPECT_GT(pid, 0) << up.status().dump();
    EXPECT_EQ(::kill(pid, SIGKILL), 0);
    EXPECT_TRUE(eventually([&] { return up.service(name)["pid"] != pid; })) << up.status().dump();
    return pid;
}

TEST(Up, RestartsAKilledServiceWithBackoffThatResets) {
    UpRun up({.extra_args = {"--restart-delay", "300", "--restart-reset-after", "3"}});
    EXPECT_EQ(up.service("addition_worker")["state"], "serving") << up.status().dump();
    EXPECT_EQ(up.status()["restarts"], 0);
    const auto add = [&] {
        return post(
            up.url(up.submitter_port) + "/submit",
            json{{"operation", "addition"}, {"a", 2}, {"b", 3}, {"mechanism", "http"}}.dump());
    };

    const auto first = crash(up, "addition_worker");
    ASSERT_TRUE(eventually([&] { return up.service("addition_worker")["state"] == "serving"; }))
        << up.output();
    EXPECT_NE(up.output().find("*** addition_worker (pid " + std::to_string(first) +
                               ") killed by signal 9 (Killed) unexpectedly; restart 1 in 0.3 s"),
              std::string::npos)
        << up.output();
    EXPECT_NE(up.output().find("*** addition_worker serves again (pid"), std::string::npos);
    const auto restarted = add();
    EXPECT_EQ(restarted.status, 200u) << restarted.body;
    EXPECT_EQ(json::parse(restarted.body)["result"], 5);
    EXPECT_EQ(up.service("addition_worker")["restarts"], 1);
    EXPECT_EQ(up.service("addition_worker")["last_end"],
              "(pid " + std::to_string(first) + ") killed by signal 9 (Killed) unexpectedly");
    EXPECT_EQ(up.status()["restarts"], 1);

    // At once again: the delay doubles.
    crash(up, "addition_worker");
    ASSERT_TRUE(eventually([&] { return up.service("addition_worker")["state"] == "serving"; }));
    EXPECT_NE(up.output().find("restart 2 in 0.6 s"), std::string::npos) << up.output();

    // After serving longer than --restart-reset-after, the first delay again.
    std::this_thread::sleep_for(std::chrono::milliseconds(3500));
    crash(up, "addition_worker");
    ASSERT_TRUE(eventually([&] { return up.service("addition_worker")["state"] == "serving"; }));
    EXPECT_NE(up.output().find("restart 3 in 0.3 s"), std::string::npos) << up.output();
    EXPECT_EQ(add().status, 200u);
    EXPECT_EQ(up.status()["restarts"], 3);

    const auto now_running = children_of(up.process().pid());
    up.process().signal(SIGINT);
    const auto status = up.process().wait_for(std::chrono::seconds(60));
    ASSERT_TRUE(status) << up.output();
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << describe_wait_status(*status);
    for (const auto child : now_running) {
        EXPECT_FALSE(alive(child)) << "child " << child << " outlived calcmesh up";
    }
    EXPECT_EQ(up.service("addition_worker")["state"], "stopped");
}

TEST(Up, StopsPromptlyWhileWaitingToRestart) {
    UpRun up({.extra_args = {"--restart-delay", "600000"}});
    crash(up, "log_collector");
    ASSERT_TRUE(eventually([&] {
        return up.output().find("restart 1 in 600.0 s") != std::string::npos;
    })) << up.output();
    EXPECT_EQ(up.service("log_collector")["state"], "waiting_to_restart");
    const auto started = std::chrono::steady_clock::now();
    up.process().signal(SIGTERM);
    const auto status = up.process().wait_for(std::chrono::seconds(60));
    ASSERT_TRUE(status) << up.output();
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << describe_wait_status(*status);
    std::cout << "[figure] calcmesh up stopped "
              << std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()
              << " s after SIGTERM, during a 600 s restart delay\n";
    for (const auto child : up.children) {
        EXPECT_FALSE(alive(child)) << "child " << child << " outlived calcmesh up";
    }
}

TEST(Up, StopsAtOnceWhenAskedWhileStarting) {
    UpRun up({.kafka = true, .wait_until_up = false});
    // The broker is the first child and takes seconds to become ready: ask while it starts.
    std::set<pid_t> children;
    ASSERT_TRUE(eventually([&] {
        children = children_of(up.process().pid());
        return !children.empty();
    }));
    const auto started = std::chrono::steady_clock::now();
    up.process().signal(SIGINT);
    const auto status = up.process().wait_for(std::chrono::seconds(60));
    ASSERT_TRUE(status) << up.output();
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << describe_wait_status(*status);
    EXPECT_NE(up.output().find("received SIGINT, stopping"), std::string::npos) << up.output();
    EXPECT_EQ(up.output().find("calcmesh is up"), std::string::npos)
        << "it started the rest before stopping:\n"
        << up.output();
    std::cout << "[figure] calcmesh up stopped "
              << std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()
              << " s after SIGINT, while the broker was starting\n";
    for (const auto child : children) {
        EXPECT_FALSE(alive(child)) << "child " << child << " outlived calcmesh up";
    }
}

TEST(Up, RunsKafkaAndItsTopicsToo) {
    UpRun up({.kafka = true});
    EXPECT_EQ(up.children.size(), 8u) << up.output();
    const auto response =
        post(up.url(up.submitter_port) + "/submit",
             json{{"operation", "division"}, {"a", 7}, {"b", 2}, {"mechanism", "kafka"}}.dump());
    ASSERT_EQ(response.status, 200u) << response.body;
    const auto job = json::parse(response.body);
    EXPECT_EQ(job["result"], 3);
    EXPECT_EQ(job["remainder"], 1);
    const auto id = job["job_id"].get<std::string>();

    // The result is on the results topic for any Kafka client to see.
    std::string consumed;
    FILE* kcat = ::popen(
        ("kcat -b 127.0.0.1:" + std::to_string(up.kafka_port) + " -C -t results -e -q").c_str(),
        "r");
    ASSERT_NE(kcat, nullptr);
    char buffer[4096];
    for (std::size_t got; (got = std::fread(buffer, 1, sizeof buffer, kcat)) > 0;) {
        consumed.append(buffer, got);
    }
    ::pclose(kcat);
    EXPECT_NE(consumed.find(id), std::string::npos) << consumed;
    ASSERT_TRUE(eventually([&] {
        const auto records =
            json::parse(get(up.url(up.collector_port) + "/logs?job_id=" + id).body);
        return records.size() == 1 && records[0]["mechanism"] == "kafka";
    }));

    up.process().signal(SIGTERM);
    ASSERT_TRUE(up.process().wait_for(std::chrono::seconds(60)));
    for (const auto child : up.children) {
        EXPECT_FALSE(alive(child)) << "child " << child << " outlived calcmesh up";
    }
}

}  // namespace
}  // namespace calcmesh::testing
