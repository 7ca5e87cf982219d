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
#include <future>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "calcmesh/lab/flows.hpp"
#include "calcmesh/lab/identity.hpp"
#include "calcmesh/lab/lab.hpp"
#include "calcmesh/policy/matrix.hpp"
#include "calcmesh/process.hpp"
#include "lab_policy.hpp"

namespace calcmesh::observe {
namespace {

namespace fs = std::filesystem;
using lab::Datapath;

constexpr int kPerfPort = 7000;

std::string bin(const std::string& name) {
    return lab::bin_dir() + "/" + name;
}

CommandResult run(std::vector<std::string> argv) {
    ChildProcess::Options options;
    options.argv = std::move(argv);
    return run_captured(options);
}

class ObserveLab : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        if (geteuid() != 0) {
            return;
        }
        name_ = "ct" + std::to_string(getpid()) + "o";
        std::ostringstream log;
        lab::lab_up({name_, Datapath::ebpf, true, true}, log);
        for (const std::string pod : {"division-worker", "addition-worker"}) {
            auto options = lab::launch_in(
                topology(), pod, {bin("lab_perf"), "server", "--port", std::to_string(kPerfPort)});
            options.output_file = (lab::lab_dir(name_) / ("perf-" + pod + ".log")).string();
            perf_servers_.emplace_back(options);
        }
        up_ = true;
    }

    static void TearDownTestSuite() {
        if (name_.empty()) {
            return;
        }
        perf_servers_.clear();
        std::ostringstream log;
        lab::lab_down(name_, log);
    }

    void SetUp() override {
        if (geteuid() != 0) {
            GTEST_SKIP() << "the lab needs root";
        }
        ASSERT_TRUE(up_) << "lab setup failed";
    }

    static const lab::Topology& topology() {
        static const lab::Topology kTopology(name_);
        return kTopology;
    }

    static CommandResult in_pod(const std::string& pod, std::vector<std::string> argv) {
        return run_captured(lab::launch_in(topology(), pod, std::move(argv)));
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
        const auto result = run(argv);
        EXPECT_EQ(result.exit_code, 0) << result.errors;
        return result.output;
    }

    // Every line of `calcmesh observe -o json` with the extra arguments.
    static std::vector<nlohmann::json> flows(std::vector<std::string> args) {
        args.insert(args.end(), {"-o", "json", "--last", "100000"});
        std::vector<nlohmann::json> lines;
        std::istringstream output(observe(args));
        for (std::string line; std::getline(output, line);) {
            lines.push_back(nlohmann::json::parse(line));
        }
        return lines;
    }

    static bool perf_works(const std::string& from, const std::string& to) {
        const auto result =
            in_pod(from, {bin("lab_perf"), "rr", "--host", topology().pod(to).ip.str(), "--port",
                          std::to_string(kPerfPort), "--transactions", "20", "--warmup", "1",
                          "--timeout-ms", "1000"});
        return result.exit_code == 0;
    }

    // The shipped policies, as deploy/render renders them for each cluster.
    static std::vector<std::string> shipped_policies() {
        std::vector<std::string> files;
        for (const auto& cluster : topology().clusters()) {
            files.push_back(
                fmt::format("{}/policies/{}.yaml", CALCMESH_RENDERED_DIR, cluster.name));
        }
        return files;
    }

    static CommandResult lab_policy(const std::string& verb,
                                    const std::vector<std::string>& files) {
        std::vector<std::string> argv = {bin("calcmesh"), "lab", "policy", verb, "--name", name_};
        argv.insert(argv.end(), files.begin(), files.end());
        return run(argv);
    }

    static void apply_shipped_policies() {
        const auto applied = lab_policy("apply", shipped_policies());
        ASSERT_EQ(applied.exit_code, 0) << applied.errors;
        ASSERT_NE(applied.output.find("applied"), std::string::npos) << applied.output;
    }

    static std::vector<policy::IntendedFlow> intended_flows() {
        const auto path =
            fs::path(CALCMESH_SOURCE_DIR) / "deploy/kubernetes/policies" / "intended-matrix.yaml";
        std::ifstream file(path);
        const std::string yaml((std::istreambuf_iterator<char>(file)), {});
        auto flows = policy::parse_intended(path.string(), yaml);
        EXPECT_TRUE(flows.has_value()) << flows.error().message;
        return flows.has_value() ? flows.value() : std::vector<policy::IntendedFlow>{};
    }

    // One TCP connection the lab can make: from a pod (or the world, the client pod) to the
    // port of another pod's service, and whether the intended matrix lists it.
    struct Probe {
        std::string from;  ///< a pod, or "world"
        std::string to;
        int port = 0;
        bool intended = false;
    };

    // Every pair of the lab, judged by the intended matrix: what it lists passes, the rest not.
    static std::vector<Probe> intended_probes() {
        const auto flows = intended_flows();
        const auto inventory = lab_inventory(topology());
        const auto cluster_of = [&](const std::string& name) {
            for (const auto& endpoint : inventory) {
                if (endpoint.name == name) {
                    return endpoint.cluster;
                }
            }
            return std::string("world");
        };
        // The matrix names the broker after its StatefulSet's pod.
        const auto names = [](const std::vector<std::string>& list, const std::string& pod) {
            const auto name = pod == "kafka" ? std::string("kafka-0") : pod;
            return std::any_of(list.begin(), list.end(), [&](const std::string& item) {
                return item == name || (item == "*" && pod != "world");
            });
        };
        std::vector<std::string> sources = {"world"};
        for (const auto& endpoint : inventory) {
            sources.push_back(endpoint.name);
        }
        std::vector<Probe> probes;
        for (const auto& from : sources) {
            for (const auto& to : inventory) {
                if (to.name == from || to.ports.empty()) {
                    continue;
                }
                const auto& port = to.ports.front();
                const bool intended = std::any_of(flows.begin(), flows.end(), [&](const auto& f) {
                    return f.protocol == policy::Protocol::tcp &&
                           (f.port == port.name || f.port == std::to_string(port.port)) &&
                           names(f.from, from) && names(f.to, to.name) &&
                           (!f.same_cluster || cluster_of(from) == to.cluster);
                });
                probes.push_back({from, to.name, port.port, intended});
            }
        }
        return probes;
    }

    // Which probes open a TCP connection (within 2 s); each source probes concurrently.
    static std::map<std::string, bool> connect_all(const std::vector<Probe>& probes) {
        std::map<std::string, std::string> scripts;
        for (const auto& probe : probes) {
            scripts[probe.from] += fmt::format(
                "(timeout 2 bash -c 'exec 3<>/dev/tcp/{}/{}' 2>/dev/null && echo '{} ok' || "
                "echo '{} no') &\n",
                topology().pod(probe.to).ip.str(), probe.port, probe.to, probe.to);
        }
        std::vector<std::pair<std::string, std::future<CommandResult>>> runs;
        runs.reserve(scripts.size());
        for (const auto& [from, script] : scripts) {
            runs.emplace_back(from, std::async(std::launch::async, [from, script] {
                                  return in_pod(from == "world" ? "client" : from,
                                                {"bash", "-c", script + "wait"});
                              }));
        }
        std::map<std::string, bool> connected;
        for (auto& [from, run] : runs) {
            std::istringstream output(run.get().output);
            std::string to, result;
            while (output >> to >> result) {
                connected[from + " -> " + to] = result == "ok";
            }
        }
        return connected;
    }

    // The flow stage's policy maps of every node, as bpftool prints them.
    static std::string policy_maps() {
        std::string dump;
        for (const auto& node : topology().nodes()) {
            for (const char* map : {"policy", "policy_modes"}) {
                dump += run({"bpftool", "-j", "map", "dump", "pinned",
                             lab::node_pin_dir(topology(), node) + "/" + map})
                            .output;
            }
        }
        return dump;
    }

    static inline std::string name_;
    static inline bool up_ = false;
    static inline std::vector<ChildProcess> perf_servers_;
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
        if (flow.at("destination").value("pod_name", "") != "addition-worker") {
            continue;
        }
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
        for (const char* mechanism : {"http", "kafka"}) {
            ASSERT_TRUE(submit(operation, mechanism).contains("result")) << operation;
        }
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
    for (const auto& edge : expected) {
        EXPECT_NE(output.find(edge), std::string::npos) << edge << "\n" << output;
    }

    std::ifstream svg_file(dir / "map.svg");
    std::string svg((std::istreambuf_iterator<char>(svg_file)), {});
    // Graphviz writes '-' in SVG text as a character reference.
    for (auto at = svg.find("&#45;"); at != std::string::npos; at = svg.find("&#45;", at)) {
        svg.replace(at, 5, "-");
    }
    const lab::Identities identities(topology());
    for (const auto& pod : identities.pods()) {
        EXPECT_NE(svg.find(pod.pod), std::string::npos) << pod.pod;
    }
    for (const char* cluster : {"c1-client", "c2-kafka", "c3a-workers", "c3b-workers"}) {
        EXPECT_NE(svg.find(cluster), std::string::npos) << cluster;
    }
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
    const auto observer = lab::lab_process(name_, "observer");
    ASSERT_TRUE(observer.has_value());
    // With the collector stopped nothing drains the ring buffers: a burst of connections, four
    // events each on both nodes, overflows them.
    ASSERT_EQ(kill(*observer, SIGSTOP), 0);
    const auto burst =
        in_pod("addition-worker",
               {bin("lab_perf"), "crr", "--host", topology().pod("division-worker").ip.str(),
                "--port", std::to_string(kPerfPort), "--transactions", "6000", "--warmup", "0"});
    ASSERT_EQ(kill(*observer, SIGCONT), 0);
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
    for (const auto& node : topology().nodes()) {
        counted += lab::read_flow_counters(lab::node_pin_dir(topology(), node))[FLOW_LOST];
    }
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
    ChildProcess::Options options;
    options.argv = {bin("calcmesh"), "observe", "--name", name_, "--serve", "--port", "0"};
    options.output_file = (dir / "serve.log").string();
    ChildProcess serve(options);
    struct Stop {
        ChildProcess& process;
        ~Stop() { process.stop(std::chrono::seconds(5)); }
    } stop{serve};
    std::string url;
    for (int i = 0; i < 100 && url.empty(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        std::ifstream log(dir / "serve.log");
        std::string word;
        while (log >> word) {
            if (word.rfind("http://", 0) == 0) {
                url = word;
            }
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
    const auto dom = run(dump);
    ASSERT_EQ(dom.exit_code, 0) << dom.errors;
    // The page's script fetched the map and the flows and put them in the document.
    EXPECT_NE(dom.output.find("<svg"), std::string::npos);
    const lab::Identities identities(topology());
    for (const auto& pod : identities.pods()) {
        EXPECT_NE(dom.output.find(pod.pod), std::string::npos) << pod.pod;
    }
    for (const auto& cluster : topology().clusters()) {
        EXPECT_NE(dom.output.find(cluster.name), std::string::npos) << cluster.name;
    }
    EXPECT_NE(dom.output.find("flows seen"), std::string::npos);
    EXPECT_NE(dom.output.find("FORWARDED"), std::string::npos);
    auto shot = chromium;
    shot.insert(shot.end(),
                {"--window-size=1600,1200", "--screenshot=" + (dir / "page.png").string(), url});
    EXPECT_EQ(run(shot).exit_code, 0);
    EXPECT_TRUE(fs::exists(dir / "page.png"));
    fs::remove_all(dir);
}

// The shipped policies, compiled for the lab's pods and enforced by the flow stage: every pair
// of the lab connects exactly where the intended matrix says, a refused connection is observed
// as DROPPED with a policy reason and the clusters of both sides, and jobs still run.
TEST_F(ObserveLab, ShippedPoliciesEnforceTheIntendedMatrix) {
    apply_shipped_policies();
    const auto probes = intended_probes();
    std::vector<std::string> files;
    for (const auto& file : shipped_policies()) {
        files.push_back(file);
    }
    const auto compiled = compile_lab_policy(topology(), {files.begin(), files.end()});
    std::map<std::string, std::size_t> index;
    for (std::size_t i = 0; i < compiled.inventory.size(); ++i) {
        index[compiled.inventory[i].name] = i;
    }
    const auto connected = connect_all(probes);
    int allowed = 0, denied = 0;
    for (const auto& probe : probes) {
        const auto pair = probe.from + " -> " + probe.to;
        SCOPED_TRACE(fmt::format("{}:{}", pair, probe.port));
        const auto from = probe.from == "world" ? policy::Peer::of(policy::Entity::world)
                                                : policy::Peer::of(index.at(probe.from));
        const auto decision =
            policy::decide(compiled.compiled, from, policy::Peer::of(index.at(probe.to)),
                           probe.port, policy::Protocol::tcp);
        EXPECT_EQ(decision.connects(), probe.intended) << "the engine disagrees with the matrix";
        ASSERT_TRUE(connected.contains(pair));
        EXPECT_EQ(connected.at(pair), probe.intended);
        ++(probe.intended ? allowed : denied);
    }
    EXPECT_GT(allowed, 10);
    EXPECT_GT(denied, 30);
    std::this_thread::sleep_for(std::chrono::seconds(1));

    const lab::Identities identities(topology());
    std::map<std::string, std::string> cluster_of = {{"", ""}};
    for (const auto& pod : identities.pods()) {
        cluster_of[pod.pod] = pod.cluster;
    }
    std::set<std::string> dropped;
    for (const auto& line : flows({"--verdict", "DROPPED"})) {
        if (!line.contains("flow")) {
            continue;
        }
        const auto& flow = line.at("flow");
        const auto reason = flow.at("drop_reason_desc").get<std::string>();
        // Other drops (such as FIB_LOOKUP_FAILED for addresses outside the lab) are no concern.
        if ((reason != "POLICY_DENIED" && reason != "POLICY_DENY") ||
            !flow.at("l4").contains("TCP")) {
            continue;
        }
        const auto source = flow.at("source").value("pod_name", "");
        const auto destination = flow.at("destination").value("pod_name", "");
        EXPECT_EQ(flow.at("source").value("cluster_name", ""), cluster_of.at(source));
        EXPECT_EQ(flow.at("destination").value("cluster_name", ""), cluster_of.at(destination));
        dropped.insert(fmt::format("{} -> {}:{}", source.empty() ? "world" : source, destination,
                                   flow.at("l4").at("TCP").value("destination_port", 0)));
    }
    for (const auto& probe : probes) {
        if (!probe.intended) {
            const auto flow = fmt::format("{} -> {}:{}", probe.from, probe.to, probe.port);
            EXPECT_TRUE(dropped.contains(flow)) << "no DROPPED flow for " << flow;
        }
    }
    const auto compact = observe({"--verdict", "DROPPED", "--last", "3"});
    EXPECT_NE(compact.find("L3_L4 Policy denied DROPPED"), std::string::npos) << compact;

    // What the system needs still works, across clusters, by HTTP and by Kafka.
    for (const char* mechanism : {"http", "kafka"}) {
        EXPECT_EQ(submit("multiplication", mechanism).value("result", -1), 48) << mechanism;
    }
}

// L7 rules are not enforced (no proxy): every request of the matrix reaches the service, and
// the observer reports those the rules refuse as AUDIT, the others as FORWARDED.
TEST_F(ObserveLab, L7RulesAreAuditedAsTheMatrixSays) {
    apply_shipped_policies();
    const auto inventory = lab_inventory(topology());
    const auto port_of = [&](const std::string& pod) {
        for (const auto& endpoint : inventory) {
            if (endpoint.name == pod) {
                return endpoint.ports.front().port;
            }
        }
        return 0;
    };
    struct Sent {
        std::string from, to, method, path;
        std::string verdict;
    };
    std::vector<Sent> sent;
    for (const auto& flow : intended_flows()) {
        const auto& from = flow.from.front();
        const auto& to = flow.to.front();
        // Requests between parties the lab has (not the nodes' probes, not the platform's
        // pods), over HTTP: the Kafka L7 rules are optional and not in the shipped files.
        if ((from != "world" && port_of(from) == 0) || port_of(to) == 0 || to == "kafka") {
            continue;
        }
        for (const auto& [requests, verdict] :
             {std::pair{&flow.allow, "FORWARDED"}, std::pair{&flow.deny, "AUDIT"}}) {
            for (const auto& request : *requests) {
                const auto space = request.find(' ');
                Sent one{from, to, request.substr(0, space), request.substr(space + 1), verdict};
                const auto result = in_pod(
                    from == "world" ? "client" : from,
                    {"curl", "-s", "-o", "/dev/null", "--path-as-is", "--max-time", "3", "-X",
                     one.method, fmt::format("http://{}:{}{}", to, port_of(to), one.path)});
                EXPECT_EQ(result.exit_code, 0) << request << " was not answered";
                sent.push_back(one);
            }
        }
    }
    ASSERT_GT(sent.size(), 20u);
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const auto observed = flows({"--protocol", "http"});
    for (const auto& one : sent) {
        SCOPED_TRACE(fmt::format("{} -> {}: {} {}", one.from, one.to, one.method, one.path));
        int found = 0;
        for (const auto& line : observed) {
            if (!line.contains("flow")) {
                continue;
            }
            const auto& flow = line.at("flow");
            const auto& http = flow.at("l7").at("http");
            const auto url = http.value("url", "");
            if (flow.at("l7").at("type") != "REQUEST" || http.value("method", "") != one.method ||
                flow.at("destination").value("pod_name", "") != one.to ||
                flow.at("source").value("pod_name", "world") != one.from ||
                !url.ends_with(fmt::format(":{}{}", port_of(one.to), one.path))) {
                continue;
            }
            ++found;
            EXPECT_EQ(flow.at("verdict"), one.verdict);
        }
        EXPECT_GT(found, 0) << "the request was not observed";
    }
    const auto audited = observe({"--verdict", "AUDIT", "--last", "3"});
    EXPECT_NE(audited.find("L7 http-request AUDIT"), std::string::npos) << audited;
}

// With the optional Kafka L7 rules, Kafka requests are audited too: a worker producing to
// another worker's topic is AUDIT (and still served), its own results FORWARDED.
TEST_F(ObserveLab, KafkaL7RulesAreAudited) {
    auto files = shipped_policies();
    files.push_back(std::string(CALCMESH_SOURCE_DIR) +
                    "/deploy/kubernetes/policies/kafka-l7/c2-kafka.yaml");
    const auto applied = lab_policy("apply", files);
    ASSERT_EQ(applied.exit_code, 0) << applied.errors;
    ASSERT_EQ(submit("addition", "kafka").value("result", -1), 16);
    const auto produced = in_pod("addition-worker", {"bash", "-c",
                                                     "echo 1 | timeout 20 kcat -P -b kafka:9092 "
                                                     "-t subtraction_requests"});
    EXPECT_EQ(produced.exit_code, 0) << produced.errors;
    std::this_thread::sleep_for(std::chrono::seconds(1));
    std::map<std::string, std::set<std::string>> verdicts;
    for (const auto& line : flows({"--protocol", "kafka", "--from-pod", "addition-worker"})) {
        if (!line.contains("flow")) {
            continue;
        }
        const auto& flow = line.at("flow");
        const auto& kafka = flow.at("l7").at("kafka");
        verdicts[kafka.value("api_key", "") + " " + kafka.value("topic", "")].insert(
            flow.at("verdict").get<std::string>());
    }
    EXPECT_EQ(verdicts["produce subtraction_requests"], std::set<std::string>{"AUDIT"});
    EXPECT_EQ(verdicts["produce results"], std::set<std::string>{"FORWARDED"});
    EXPECT_EQ(verdicts["fetch addition_requests"], std::set<std::string>{"FORWARDED"});
    ASSERT_EQ(lab_policy("remove", {}).exit_code, 0);
}

// A wrong file changes nothing in the maps; `remove` gives full connectivity back.
TEST_F(ObserveLab, BadPolicyChangesNothingAndRemoveRestoresConnectivity) {
    apply_shipped_policies();
    const auto before = policy_maps();
    const auto dir = fs::temp_directory_path() / (name_ + "-policy");
    fs::create_directories(dir);
    {
        std::ifstream shipped(shipped_policies()[2]);
        std::string yaml((std::istreambuf_iterator<char>(shipped)), {});
        const auto at = yaml.find("endpointSelector");
        ASSERT_NE(at, std::string::npos);
        yaml.replace(at, 16, "endpointSelektor");
        std::ofstream(dir / "c3a-workers.yaml") << yaml;
    }
    const auto bad = lab_policy("apply", {(dir / "c3a-workers.yaml").string()});
    fs::remove_all(dir);
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_NE(bad.errors.find("c3a-workers.yaml"), std::string::npos) << bad.errors;
    EXPECT_NE(bad.errors.find("endpointSelektor"), std::string::npos) << bad.errors;
    EXPECT_EQ(policy_maps(), before);

    const auto removed = lab_policy("remove", {});
    ASSERT_EQ(removed.exit_code, 0) << removed.errors;
    const auto probes = intended_probes();
    const auto connected = connect_all(probes);
    for (const auto& probe : probes) {
        EXPECT_TRUE(connected.at(probe.from + " -> " + probe.to))
            << probe.from << " -> " << probe.to;
    }
    EXPECT_EQ(policy_maps().find("\"key\""), std::string::npos) << "policy maps not empty";
}

}  // namespace
}  // namespace calcmesh::observe
