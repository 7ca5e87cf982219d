// The flow stage, the collector and `calcmesh observe` on a real lab with the real services and
// Kafka broker: flows of cross-cluster jobs, the service map, policy enforcement with connection
// tracking in every datapath, ring-buffer losses, and the live page in headless Chromium.
// Needs root; the lab is named ct<pid>o and removed in teardown, also when a test fails.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "flow_stage.hpp"
#include "identity.hpp"
#include "lab.hpp"

namespace calcmesh::observe {
namespace {

namespace fs = std::filesystem;
using lab::Datapath;

constexpr int kPerfPort = 7000;

std::string bin(const std::string& name) {
    return lab::bin_dir() + "/" + name;
}

class ObserveLab : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        if (geteuid() != 0)
            return;
        name_ = "ct" + std::to_string(getpid()) + "o";
        std::ostringstream log;
        lab::lab_up({name_, Datapath::ebpf, true, true}, log);
        state_ = lab::require_lab(name_);
        for (const char* pod : {"division-worker", "addition-worker"}) {
            lab::start_process(*state_, pod, std::string("perf-") + pod,
                               {bin("lab_perf"), "server", "--port", std::to_string(kPerfPort)},
                               {});
        }
    }

    static void TearDownTestSuite() {
        if (name_.empty())
            return;
        std::ostringstream log;
        lab::lab_down(name_, log);
    }

    void SetUp() override {
        if (geteuid() != 0)
            GTEST_SKIP() << "the lab needs root";
        ASSERT_TRUE(state_.has_value()) << "lab setup failed";
    }

    static const lab::Topology& topology() {
        static const lab::Topology topology(name_);
        return topology;
    }

    static lab::CommandResult in_pod(const std::string& pod, std::vector<std::string> argv) {
        return lab::run(argv, lab::launch_options(topology(), pod));
    }

    // An HTTP GET from inside a pod; the status code, or 0 if it timed out or failed.
    static int http_get(const std::string& from, const std::string& url, int timeout_s = 3) {
        const auto result = in_pod(from, {"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                          "--max-time", std::to_string(timeout_s), url});
        return result.exit_code == 0 ? std::stoi(result.output) : 0;
    }

    static nlohmann::json submit(const std::string& operation, const std::string& mechanism) {
        const auto body =
            nlohmann::json{{"operation", operation}, {"a", 12}, {"b", 4}, {"mechanism", mechanism}}
                .dump();
        const auto result = in_pod(
            "client", {"curl", "-s", "--max-time", "15", "-H", "Content-Type: application/json",
                       "-d", body, "http://job-submitter:8080/submit"});
        EXPECT_EQ(result.exit_code, 0) << result.errors;
        return nlohmann::json::parse(result.output, nullptr, false);
    }

    static std::string observe(std::vector<std::string> args) {
        std::vector<std::string> argv = {bin("calcmesh"), "observe", "--name", name_};
        argv.insert(argv.end(), args.begin(), args.end());
        const auto result = lab::run(argv);
        EXPECT_EQ(result.exit_code, 0) << result.errors;
        return result.output;
    }

    // Every line of `calcmesh observe -o json` with the extra arguments.
    static std::vector<nlohmann::json> flows(std::vector<std::string> args) {
        args.insert(args.end(), {"-o", "json", "--last", "100000"});
        std::vector<nlohmann::json> lines;
        std::istringstream output(observe(args));
        for (std::string line; std::getline(output, line);)
            lines.push_back(nlohmann::json::parse(line));
        return lines;
    }

    static bool perf_works(const std::string& from, const std::string& to) {
        const auto result =
            in_pod(from, {bin("lab_perf"), "rr", "--host", topology().pod(to).ip.str(), "--port",
                          std::to_string(kPerfPort), "--transactions", "20", "--warmup", "1",
                          "--timeout-ms", "1000"});
        return result.exit_code == 0;
    }

    static inline std::string name_;
    static inline std::optional<lab::LabState> state_;
};

TEST_F(ObserveLab, CrossClusterJobsShowWithTheirClusters) {
    for (const char* mechanism : {"http", "kafka"}) {
        const auto job = submit("addition", mechanism);
        ASSERT_EQ(job.value("result", -1), 16) << job.dump();
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));

    bool request = false, response = false;
    for (const auto& line : flows({"--from-pod", "job-submitter", "--protocol", "http"})) {
        const auto& flow = line.at("flow");
        if (flow.at("destination").value("pod_name", "") != "addition-worker")
            continue;
        EXPECT_EQ(flow.at("source").at("cluster_name"), "c1-client");
        EXPECT_EQ(flow.at("destination").at("cluster_name"), "c3a-workers");
        EXPECT_EQ(flow.at("Type"), "L7");
        EXPECT_EQ(line.at("node_name"), "c3a-workers/c3an1");
        const auto& http = flow.at("l7").at("http");
        if (flow.at("l7").at("type") == "REQUEST") {
            request = true;
            EXPECT_EQ(http.at("method"), "GET");
            EXPECT_NE(http.at("url").get<std::string>().find("/compute?"), std::string::npos);
        }
    }
    for (const auto& line : flows({"--to-pod", "job-submitter", "--from-pod", "addition-worker",
                                   "--protocol", "http"})) {
        const auto& l7 = line.at("flow").at("l7");
        if (l7.at("type") == "RESPONSE" && l7.at("http").value("code", 0) == 200) {
            response = true;
            EXPECT_TRUE(line.at("flow").at("is_reply").get<bool>());
            EXPECT_GT(std::stoll(l7.value("latency_ns", "0")), 0);
        }
    }
    EXPECT_TRUE(request) << "no L7 request from job-submitter to addition-worker";
    EXPECT_TRUE(response) << "no HTTP 200 response from addition-worker";

    // The Kafka mechanism: job_submitter produces the request, the worker produces the result.
    std::set<std::string> kafka;
    for (const auto& line : flows({"--protocol", "kafka", "--to-cluster", "c2-kafka"})) {
        const auto& flow = line.at("flow");
        const auto& request = flow.at("l7").at("kafka");
        kafka.insert(flow.at("source").value("pod_name", "") + " " +
                     request.at("api_key").get<std::string>() + " " + request.value("topic", ""));
    }
    EXPECT_TRUE(kafka.contains("job-submitter produce addition_requests"));
    EXPECT_TRUE(kafka.contains("addition-worker produce results"));
    EXPECT_TRUE(kafka.contains("addition-worker fetch addition_requests"));

    const auto compact = observe({"--from-pod", "job-submitter", "--to-pod", "addition-worker",
                                  "--protocol", "http", "--last", "5"});
    EXPECT_NE(compact.find("c1-client/calcmesh/job-submitter:"), std::string::npos) << compact;
    EXPECT_NE(compact.find("-> c3a-workers/calcmesh/addition-worker:8091"), std::string::npos)
        << compact;
    EXPECT_NE(compact.find("L7 http-request FORWARDED (HTTP/1.1 GET http://addition-worker:8091"),
              std::string::npos)
        << compact;
}

TEST_F(ObserveLab, ServiceMapHasEveryServiceAndEdgeOfJobs) {
    for (const char* operation : {"addition", "subtraction", "multiplication", "division"}) {
        for (const char* mechanism : {"http", "kafka"})
            ASSERT_TRUE(submit(operation, mechanism).contains("result")) << operation;
    }
    ASSERT_EQ(http_get("client", "http://help-page:8081/"), 200);
    std::this_thread::sleep_for(std::chrono::seconds(1));

    const auto dir = fs::temp_directory_path() / (name_ + "-map");
    fs::create_directories(dir);
    const auto output = observe({"map", "--output", (dir / "map").string()});
    const std::string workers[] = {"addition-worker", "subtraction-worker", "multiplication-worker",
                                   "division-worker"};
    const auto cluster_of = [](const std::string& worker) {
        return worker == "addition-worker" || worker == "subtraction-worker" ? "c3a-workers/"
                                                                             : "c3b-workers/";
    };
    std::vector<std::string> expected = {"world -> c1-client/job-submitter  http :8080",
                                         "world -> c1-client/help-page  http :8081"};
    for (const auto& worker : workers) {
        const auto to = cluster_of(worker) + worker;
        expected.push_back("c1-client/job-submitter -> " + to + "  http :");
        expected.push_back("c1-client/help-page -> " + to + "  http :");
        expected.push_back(to + " -> c2-kafka/kafka  kafka :9092");
        expected.push_back(to + " -> c1-client/log-collector  http :8082");
    }
    expected.push_back("c1-client/job-submitter -> c2-kafka/kafka  kafka :9092");
    for (const auto& edge : expected)
        EXPECT_NE(output.find(edge), std::string::npos) << edge << "\n" << output;

    std::ifstream svg_file(dir / "map.svg");
    std::string svg((std::istreambuf_iterator<char>(svg_file)), {});
    // Graphviz writes '-' in SVG text as a character reference.
    for (auto at = svg.find("&#45;"); at != std::string::npos; at = svg.find("&#45;", at))
        svg.replace(at, 5, "-");
    const lab::Identities identities(topology());
    for (const auto& pod : identities.pods())
        EXPECT_NE(svg.find(pod.pod), std::string::npos) << pod.pod;
    for (const char* cluster : {"c1-client", "c2-kafka", "c3a-workers", "c3b-workers"})
        EXPECT_NE(svg.find(cluster), std::string::npos) << cluster;
    std::ifstream png(dir / "map.png", std::ios::binary);
    char signature[4] = {};
    png.read(signature, sizeof(signature));
    EXPECT_EQ(std::string(signature + 1, 3), "PNG");
    fs::remove_all(dir);
}

// Hand-written policy entries: addition-worker accepts port 7000 only from job-submitter and
// may send only to log-collector. Its replies to job-submitter pass only through connection
// tracking; help-page is dropped, as seen by the observer. Removing the policy restores it all.
TEST_F(ObserveLab, PolicyWithConnectionTrackingHoldsInEveryDatapath) {
    const lab::Identities identities(topology());
    const auto worker = identities.of_pod("addition-worker");
    lab::EnforcedPolicy policy;
    policy.default_deny = {{worker, lab::Direction::ingress}, {worker, lab::Direction::egress}};
    policy.entries = {
        {worker, lab::Direction::ingress, identities.of_pod("job-submitter"), kPerfPort, 6},
        {worker, lab::Direction::egress, identities.of_pod("log-collector"), 8082, 6}};
    for (const auto datapath : lab::all_datapaths()) {
        SCOPED_TRACE(std::string(lab::to_string(datapath)));
        lab::lab_switch(name_, datapath);
        lab::install_policy(topology(), policy);
        EXPECT_TRUE(perf_works("job-submitter", "addition-worker"));
        EXPECT_FALSE(perf_works("help-page", "addition-worker"));
        EXPECT_FALSE(perf_works("addition-worker", "division-worker"));
        lab::install_policy(topology(), {});
        EXPECT_TRUE(perf_works("help-page", "addition-worker"));
        EXPECT_TRUE(perf_works("addition-worker", "division-worker"));
    }
    lab::lab_switch(name_, Datapath::ebpf);
    std::this_thread::sleep_for(std::chrono::seconds(1));

    const auto drops =
        flows({"--verdict", "DROPPED", "--from-pod", "help-page", "--to-pod", "addition-worker"});
    ASSERT_FALSE(drops.empty());
    const auto& drop = drops.back().at("flow");
    EXPECT_EQ(drop.at("drop_reason_desc"), "POLICY_DENIED");
    EXPECT_EQ(drop.at("traffic_direction"), "INGRESS");
    EXPECT_EQ(drop.at("l4").at("TCP").at("destination_port"), kPerfPort);
    EXPECT_TRUE(drop.at("l4").at("TCP").at("flags").value("SYN", false));
    const auto egress = flows({"--verdict", "DROPPED", "--from-pod", "addition-worker"});
    ASSERT_FALSE(egress.empty());
    EXPECT_EQ(egress.back().at("flow").at("traffic_direction"), "EGRESS");
}

TEST_F(ObserveLab, RingBufferOverflowIsReported) {
    const auto observer =
        std::find_if(state_->processes.begin(), state_->processes.end(),
                     [](const auto& process) { return process.name == "observer"; });
    ASSERT_NE(observer, state_->processes.end());
    // With the collector stopped nothing drains the ring buffers: a burst of connections, four
    // events each on both nodes, overflows them.
    ASSERT_EQ(kill(observer->pid, SIGSTOP), 0);
    const auto burst =
        in_pod("addition-worker",
               {bin("lab_perf"), "crr", "--host", topology().pod("division-worker").ip.str(),
                "--port", std::to_string(kPerfPort), "--transactions", "6000", "--warmup", "0"});
    ASSERT_EQ(kill(observer->pid, SIGCONT), 0);
    ASSERT_EQ(burst.exit_code, 0) << burst.errors;
    std::this_thread::sleep_for(std::chrono::seconds(3));

    std::uint64_t reported = 0;
    for (const auto& line : flows({})) {
        if (line.contains("lost_events")) {
            EXPECT_EQ(line["lost_events"]["source"], "PERF_EVENT_RING_BUFFER");
            reported += std::stoull(line["lost_events"]["num_events_lost"].get<std::string>());
        }
    }
    std::uint64_t counted = 0;
    for (const auto& node : topology().nodes())
        counted += lab::read_flow_counters(lab::node_pin_dir(topology(), node))[FLOW_LOST];
    EXPECT_GT(counted, 0u);
    EXPECT_EQ(reported, counted);
    EXPECT_NE(observe({"--last", "100000"}).find("EVENTS LOST: PERF_EVENT_RING_BUFFER"),
              std::string::npos);
    const auto status = observe({"status"});
    EXPECT_NE(status.find(fmt::format("{} events lost", counted)), std::string::npos) << status;
}

TEST_F(ObserveLab, LivePageShowsTheMapInChromium) {
    ASSERT_EQ(http_get("client", "http://help-page:8081/"), 200);
    const auto dir = fs::temp_directory_path() / (name_ + "-page");
    fs::create_directories(dir);
    lab::LaunchOptions options;
    options.log_file = (dir / "serve.log").string();
    const auto serve = lab::spawn(
        {bin("calcmesh"), "observe", "--name", name_, "--serve", "--port", "0"}, options);
    struct Stop {
        pid_t pid;
        ~Stop() { lab::terminate(pid, lab::process_start_time(pid)); }
    } stop{serve};
    std::string url;
    for (int i = 0; i < 100 && url.empty(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        std::ifstream log(dir / "serve.log");
        std::string word;
        while (log >> word) {
            if (word.rfind("http://", 0) == 0)
                url = word;
        }
    }
    ASSERT_FALSE(url.empty()) << "observe --serve did not start";
    const std::vector<std::string> chromium = {"chromium",
                                               "--headless",
                                               "--no-sandbox",
                                               "--disable-gpu",
                                               "--disable-background-networking",
                                               "--disable-component-update",
                                               "--disable-sync",
                                               "--no-first-run",
                                               "--user-data-dir=" + (dir / "profile").string(),
                                               "--virtual-time-budget=5000"};
    auto dump = chromium;
    dump.insert(dump.end(), {"--dump-dom", url});
    const auto dom = lab::run(dump);
    ASSERT_EQ(dom.exit_code, 0) << dom.errors;
    // The page's script fetched the map and the flows and put them in the document.
    EXPECT_NE(dom.output.find("<svg"), std::string::npos);
    EXPECT_NE(dom.output.find("help-page"), std::string::npos);
    EXPECT_NE(dom.output.find("flows seen"), std::string::npos);
    EXPECT_NE(dom.output.find("FORWARDED"), std::string::npos);
    auto shot = chromium;
    shot.insert(shot.end(),
                {"--window-size=1600,1200", "--screenshot=" + (dir / "page.png").string(), url});
    EXPECT_EQ(lab::run(shot).exit_code, 0);
    EXPECT_TRUE(fs::exists(dir / "page.png"));
    fs::remove_all(dir);
}

}  // namespace
}  // namespace calcmesh::observe
