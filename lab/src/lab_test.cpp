// Builds real labs (namespaces, veth, VXLAN, BPF) and sends real TCP traffic through them.
// Needs root; every lab is named ct<pid> so it never meets a user's lab, and is removed in
// teardown, or by the next run if this one was killed.
#include "lab.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "bpf_datapath.hpp"

namespace calcmesh::lab {
namespace {

namespace fs = std::filesystem;

constexpr int kPerfPort = 7000;

std::string test_lab_name(const std::string& suffix = "") {
    return "ct" + std::to_string(getpid()) + suffix;
}

// Labs of earlier test runs whose process is gone (killed before its teardown).
void remove_stale_test_labs() {
    std::ostringstream log;
    for (const auto& name : list_labs()) {
        if (name.size() < 3 || name.rfind("ct", 0) != 0) {
            continue;
        }
        const auto digits = name.substr(2, name.find_first_not_of("0123456789", 2) - 2);
        if (digits.empty() || kill(std::stoi(digits), 0) == 0) {
            continue;
        }
        lab_down(name, log);
    }
}

std::string bin(const std::string& name) {
    return bin_dir() + "/" + name;
}

// What the machine's own namespace looks like; the lab must not change it.
std::string root_namespace_snapshot() {
    return run_checked({"ip", "-o", "addr"}) + run_checked({"ip", "-o", "link"}) +
           run_checked({"ip", "route", "show", "table", "all"});
}

class LabTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        if (geteuid() != 0) {
            return;
        }
        remove_stale_test_labs();
        root_before_ = root_namespace_snapshot();
        name_ = test_lab_name();
        std::ostringstream log;
        lab_up({name_, Datapath::native, false}, log);
        state_ = require_lab(name_);
        constexpr const char* kServerPods[] = {"help-page", "subtraction-worker", "division-worker",
                                               "job-submitter", "addition-worker"};
        for (const char* pod : kServerPods) {
            start_process(*state_, pod, std::string("perf-") + pod,
                          {bin("lab_perf"), "server", "--port", std::to_string(kPerfPort)}, {});
        }
        for (const char* pod : kServerPods) {
            wait_until_listening(pod);
        }
    }

    // The servers start asynchronously; the tests must not race their listen().
    static void wait_until_listening(const std::string& pod) {
        sockaddr_in server{};
        server.sin_family = AF_INET;
        server.sin_port = htons(kPerfPort);
        server.sin_addr.s_addr = topology().pod(pod).ip.network_order();
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (std::chrono::steady_clock::now() < deadline) {
            const int fd = in_netns(topology().netns("client"),
                                    [] { return socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); });
            const bool connected =
                fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&server), sizeof(server)) == 0;
            if (fd >= 0) {
                close(fd);
            }
            if (connected) {
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        throw std::runtime_error("lab_perf server in " + pod + " does not accept connections");
    }

    static void TearDownTestSuite() {
        if (name_.empty()) {
            return;
        }
        std::ostringstream log;
        lab_down(name_, log);
        state_.reset();
    }

    void SetUp() override {
        if (geteuid() != 0) {
            GTEST_SKIP() << "the lab needs root";
        }
        ASSERT_TRUE(state_.has_value()) << "lab setup failed";
    }

    static const Topology& topology() {
        static const Topology kTopology(name_);
        return kTopology;
    }

    // Runs lab_perf in a pod against a pod's server; returns its JSON result.
    static nlohmann::json perf(const std::string& from, const std::string& to,
                               const std::string& test, int transactions, int size = 1) {
        const auto result =
            run({bin("lab_perf"), test, "--host", topology().pod(to).ip.str(), "--port",
                 std::to_string(kPerfPort), "--transactions", std::to_string(transactions),
                 "--warmup", "10", "--size", std::to_string(size), "--timeout-ms", "3000"},
                launch_options(topology(), from));
        EXPECT_EQ(result.exit_code, 0) << from << " -> " << to << ": " << result.errors;
        if (result.exit_code != 0) {
            return {};
        }
        return nlohmann::json::parse(result.output);
    }

    // Round trips across one node, two nodes of a cluster, two clusters, and from outside.
    static void traffic_on_every_path(int transactions, int size = 1) {
        const std::pair<const char*, const char*> pairs[] = {
            {"job-submitter", "help-page"},
            {"addition-worker", "subtraction-worker"},
            {"job-submitter", "division-worker"},
            {"client", "job-submitter"},
        };
        for (const auto& [from, to] : pairs) {
            const auto result = perf(from, to, "rr", transactions, size);
            EXPECT_EQ(result.value("transactions", 0), transactions) << from << " -> " << to;
        }
    }

    static std::uint64_t forwarded_by_kernels() {
        std::uint64_t total = 0;
        for (const auto& node : topology().nodes()) {
            total += kernel_forwarded(topology().netns(node.name));
        }
        return total;
    }

    static std::array<std::uint64_t, PATH_COUNT> path_packets() {
        std::array<std::uint64_t, PATH_COUNT> totals{};
        for (const auto& node : topology().nodes()) {
            const auto counters = read_path_counters(node_pin_dir(topology(), node));
            for (int path = 0; path < PATH_COUNT; ++path) {
                totals[path] += counters[path].packets;
            }
        }
        return totals;
    }

    static int pod_mtu(const std::string& pod) {
        const auto json = nlohmann::json::parse(
            run_checked({"ip", "-n", topology().netns(pod), "-j", "link", "show", "eth0"}));
        return json.at(0).at("mtu").get<int>();
    }

    static inline std::string name_;
    static inline std::string root_before_;
    static inline std::optional<LabState> state_;
};

TEST_F(LabTest, NothingIsAddedToTheMachinesNamespace) {
    lab_switch(name_, Datapath::ebpf_tunnel);
    traffic_on_every_path(10);
    EXPECT_EQ(root_namespace_snapshot(), root_before_);
    lab_switch(name_, Datapath::native);
}

TEST_F(LabTest, TrafficCrossesNodesAndClustersInEveryDatapath) {
    for (const auto datapath : all_datapaths()) {
        SCOPED_TRACE(std::string(to_string(datapath)));
        lab_switch(name_, datapath);
        EXPECT_EQ(require_lab(name_).datapath, to_string(datapath));
        traffic_on_every_path(200);
        // Bulk transfers: 64 KiB messages become GSO packets on the way.
        perf("job-submitter", "division-worker", "rr", 20, 65536);
        const bool tunnel = datapath == Datapath::tunnel || datapath == Datapath::ebpf_tunnel;
        EXPECT_EQ(pod_mtu("addition-worker"), tunnel ? Topology::kTunnelMtu : Topology::kMtu);
    }
    lab_switch(name_, Datapath::native);
}

TEST_F(LabTest, EbpfDatapathsBypassKernelForwarding) {
    // The counter measures something: native routing forwards in the nodes' kernels.
    lab_switch(name_, Datapath::native);
    auto forwarded = forwarded_by_kernels();
    traffic_on_every_path(500);
    EXPECT_GE(forwarded_by_kernels() - forwarded, 500u);

    for (const auto datapath : {Datapath::ebpf, Datapath::ebpf_tunnel}) {
        SCOPED_TRACE(std::string(to_string(datapath)));
        lab_switch(name_, datapath);
        forwarded = forwarded_by_kernels();
        const auto before = path_packets();
        traffic_on_every_path(500);
        perf("job-submitter", "division-worker", "rr", 20, 262144);
        perf("job-submitter", "division-worker", "crr", 50);
        const auto after = path_packets();
        const auto delta = [&](int path) { return after[path] - before[path]; };

        EXPECT_EQ(forwarded_by_kernels() - forwarded, 0u);
        EXPECT_GE(delta(PATH_PEER_LOCAL), 1000u);  // job-submitter <-> help-page, both ways
        EXPECT_GE(delta(PATH_PEER_FROM_NETDEV), 500u);
        EXPECT_EQ(delta(PATH_PASS_FIB), 0u);  // GSO packets too stay on the fast path
        if (datapath == Datapath::ebpf) {
            EXPECT_GE(delta(PATH_FIB_REDIRECT) + delta(PATH_FIB_NEIGH), 1500u);
            EXPECT_EQ(delta(PATH_TUNNEL_TX), 0u);
        } else {
            EXPECT_GE(delta(PATH_TUNNEL_TX), 1000u);
            EXPECT_GE(delta(PATH_PEER_FROM_OVERLAY), 1000u);
        }
    }
    lab_switch(name_, Datapath::native);
}

TEST_F(LabTest, SwitchingKeepsProcessesAndOpenConnections) {
    // A connection from the client pod, opened before the first switch and used after each.
    const int fd = in_netns(topology().netns("client"),
                            [] { return socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); });
    ASSERT_GE(fd, 0);
    timeval timeout{3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    sockaddr_in server{};
    server.sin_family = AF_INET;
    server.sin_port = htons(kPerfPort);
    server.sin_addr.s_addr = topology().pod("addition-worker").ip.network_order();
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&server), sizeof(server)), 0);
    const auto processes = require_lab(name_).processes;

    for (const auto datapath : {Datapath::tunnel, Datapath::ebpf, Datapath::ebpf_tunnel,
                                Datapath::native, Datapath::ebpf, Datapath::native}) {
        SCOPED_TRACE(std::string(to_string(datapath)));
        lab_switch(name_, datapath);
        char byte = 'x';
        ASSERT_EQ(send(fd, &byte, 1, MSG_NOSIGNAL), 1);
        ASSERT_EQ(recv(fd, &byte, 1, 0), 1);
        EXPECT_EQ(byte, 'x');
    }
    close(fd);
    for (const auto& process : processes) {
        EXPECT_EQ(process_start_time(process.pid), process.start_time) << process.name;
    }
}

TEST_F(LabTest, ExecRunsInThePodAndResolvesServiceNames) {
    const auto result = run({bin("calcmesh"), "lab", "exec", "--name", name_, "job-submitter", "--",
                             "getent", "hosts", "kafka"});
    ASSERT_EQ(result.exit_code, 0) << result.errors;
    EXPECT_EQ(result.output.substr(0, result.output.find(' ')), topology().pod("kafka").ip.str());
    const auto address = run({bin("calcmesh"), "lab", "exec", "--name", name_, "c3an2", "--", "ip",
                              "-o", "-4", "addr", "show", "dev", "ul0"});
    EXPECT_NE(address.output.find(topology().node("c3an2").underlay_ip.str()), std::string::npos);
    EXPECT_NE(run({bin("calcmesh"), "lab", "exec", "--name", name_, "no-such-pod", "--", "true"})
                  .exit_code,
              0);
}

TEST(LabDown, RemovesEverythingFromTheStateFileAlone) {
    if (geteuid() != 0) {
        GTEST_SKIP() << "the lab needs root";
    }
    remove_stale_test_labs();
    const auto name = test_lab_name("d");
    const Topology topology(name);
    std::ostringstream log;
    lab_up({name, Datapath::ebpf_tunnel, false}, log);
    auto state = require_lab(name);
    const auto recorded = start_process(state, "kafka", "perf", {bin("lab_perf"), "server"}, {});
    // One more process that nobody recorded, like a background `lab exec`.
    auto options = launch_options(topology, "division-worker");
    options.log_file = "/dev/null";
    const auto stray = spawn({"sleep", "600"}, options);
    ASSERT_TRUE(fs::exists(pin_dir(name) / "c1n1" / "endpoints"));

    // `down` from another process that knows nothing but the name, as after a crash.
    const auto result = run({bin("calcmesh"), "lab", "down", "--name", name});
    EXPECT_EQ(result.exit_code, 0) << result.errors;

    for (const auto& netns : topology.all_netns()) {
        EXPECT_FALSE(fs::exists("/run/netns/" + netns)) << netns;
    }
    EXPECT_FALSE(fs::exists(pin_dir(name)));
    EXPECT_FALSE(fs::exists(lab_dir(name)));
    waitpid(recorded, nullptr, WNOHANG);
    waitpid(stray, nullptr, WNOHANG);
    EXPECT_EQ(process_start_time(recorded), 0u);
    EXPECT_EQ(process_start_time(stray), 0u);
    EXPECT_FALSE(load_state(name).has_value());
}

TEST(LabDown, RefusesToBuildOverAnExistingLab) {
    if (geteuid() != 0) {
        GTEST_SKIP() << "the lab needs root";
    }
    const auto name = test_lab_name("x");
    std::ostringstream log;
    lab_up({name, Datapath::native, false}, log);
    EXPECT_THROW(lab_up({name, Datapath::native, false}, log), std::runtime_error);
    EXPECT_TRUE(lab_down(name, log));
    EXPECT_FALSE(lab_down(name, log));
}

// Removes a lab when the test ends, also when an assertion ends it early.
struct LabGuard {
    std::string name;
    ~LabGuard() {
        std::ostringstream log;
        lab_down(name, log);
    }
};

TEST(LabBench, SmokeWritesTheReport) {
    if (geteuid() != 0) {
        GTEST_SKIP() << "the lab needs root";
    }
    const auto name = test_lab_name("b");
    LabGuard guard{name};
    const auto dir = fs::temp_directory_path() / name;
    fs::create_directories(dir);
    const auto report = dir / "comparison.md";
    const auto result = run(
        {bin("calcmesh"), "lab", "bench", "--smoke", "--name", name, "--report", report.string()});
    ASSERT_EQ(result.exit_code, 0) << result.output << result.errors;

    std::ifstream json_file(dir / "comparison.json");
    const auto data = nlohmann::json::parse(json_file);
    // 4 datapaths x (3 pairs x (TCP_RR, TCP_CRR, TCP_STREAM) + jobs over http and kafka), every
    // value positive: the load generator fails the run on a wrong answer.
    ASSERT_EQ(data.at("measurements").size(), 44u);
    for (const auto& measurement : data.at("measurements")) {
        EXPECT_GT(measurement.at("value").get<double>(), 0) << measurement.dump();
    }
    for (const auto& entry : data.at("kernel_forwarded")) {
        const auto datapath = entry.at("datapath").get<std::string>();
        if (datapath.rfind("ebpf", 0) == 0) {
            EXPECT_EQ(entry.at("packets"), 0) << datapath;
        } else {
            EXPECT_GT(entry.at("packets"), 0) << datapath;
        }
    }
    std::ifstream markdown_file(report);
    const std::string markdown((std::istreambuf_iterator<char>(markdown_file)), {});
    for (const char* text :
         {"TCP_RR", "TCP_CRR", "TCP_STREAM", "kafka mechanism", "| client → the whole system |",
          "| ebpf-tunnel |", "comparison.png", "Cilium"}) {
        EXPECT_NE(markdown.find(text), std::string::npos) << text;
    }
    std::ifstream png(dir / "comparison.png", std::ios::binary);
    char signature[8] = {};
    png.read(signature, sizeof(signature));
    EXPECT_EQ(std::string(signature + 1, 3), "PNG");
    EXPECT_FALSE(fs::exists("/run/netns/" + Topology(name).netns("c1n1")));
    fs::remove_all(dir);
}

// The real services and Kafka broker in the pods: jobs of every operation, through both
// mechanisms, submitted through the loopback forwarder reach the workers in clusters 3a and 3b,
// in every datapath.
TEST(LabServices, JobsOfEveryOperationCrossClustersInEveryDatapath) {
    if (geteuid() != 0) {
        GTEST_SKIP() << "the lab needs root";
    }
    const auto name = test_lab_name("s");
    LabGuard guard{name};
    std::ostringstream log;
    lab_up({name, Datapath::native, true}, log);
    auto state = require_lab(name);
    const Topology topology(name);
    const auto forward_log = lab_dir(name) / "logs" / "forward.log";
    LaunchOptions options;
    options.log_file = forward_log.string();
    const auto forwarder = spawn({bin("calcmesh"), "lab", "forward", "--name", name,
                                  "--job-submitter-port", "0", "--help-page-port", "0"},
                                 options);
    state.processes.push_back({"", "forward", forwarder, process_start_time(forwarder)});
    save_state(state);
    // "forwarding 127.0.0.1:PORT -> POD ADDRESS:PORT (...)", one line per forward.
    std::map<std::string, std::string> ports;
    for (int i = 0; i < 100 && ports.size() < 2; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        std::ifstream file(forward_log);
        std::string word, local, arrow, pod;
        while (file >> word && word == "forwarding" && file >> local >> arrow >> pod) {
            ports[pod] = local.substr(local.find(':') + 1);
            std::getline(file, word);
        }
    }
    ASSERT_EQ(ports.size(), 2u) << "the forwarder did not start";
    const auto port = ports.at("job-submitter");

    struct Case {
        const char* operation;
        long long expected;
        const char* cluster;
    };
    const Case cases[] = {{"addition", 9, "c3a-workers"},
                          {"subtraction", 5, "c3a-workers"},
                          {"multiplication", 14, "c3b-workers"},
                          {"division", 3, "c3b-workers"}};
    const char* mechanisms[] = {"http", "kafka"};
    for (const auto datapath : all_datapaths()) {
        lab_switch(name, datapath);
        for (const auto& mechanism : mechanisms) {
            for (const auto& c : cases) {
                SCOPED_TRACE(fmt::format("{} {} {}", to_string(datapath), mechanism, c.operation));
                const auto body = fmt::format(
                    R"({{"operation":"{}","a":7,"b":2,"mechanism":"{}"}})", c.operation, mechanism);
                const auto result =
                    run({"curl", "-s", "--max-time", "10", "-H", "Content-Type: application/json",
                         "-d", body, "http://127.0.0.1:" + port + "/submit"});
                ASSERT_EQ(result.exit_code, 0) << result.errors;
                const auto job = nlohmann::json::parse(result.output, nullptr, false);
                ASSERT_TRUE(job.is_object()) << result.output;
                EXPECT_EQ(job.value("result", -1LL), c.expected) << result.output;
                EXPECT_EQ(job.value("worker_cluster", std::string()), c.cluster) << result.output;
            }
        }
    }
    const auto help =
        run({"curl", "-sf", "--max-time", "10", "http://127.0.0.1:" + ports.at("help-page") + "/"});
    EXPECT_EQ(help.exit_code, 0) << "help_page through the forwarder: " << help.errors;
}

}  // namespace
}  // namespace calcmesh::lab
