#include "services.hpp"

#include <fmt/format.h>
#include <fmt/ostream.h>

#include <chrono>
#include <filesystem>
#include <ostream>
#include <stdexcept>
#include <thread>

#include "calcmesh/kafka.hpp"
#include "lab.hpp"

namespace calcmesh::lab {

namespace fs = std::filesystem;

namespace {

constexpr int kKafkaPort = 9092;
constexpr int kKafkaPartitions = 3;
constexpr auto kStartTimeout = std::chrono::seconds(90);

struct WorkerSpec {
    const char* pod;
    const char* operation;
    int port;
};

constexpr WorkerSpec kWorkers[] = {{"addition-worker", "addition", 8091},
                                   {"subtraction-worker", "subtraction", 8092},
                                   {"multiplication-worker", "multiplication", 8093},
                                   {"division-worker", "division", 8094}};

std::vector<std::string> common_flags(const Topology& topology, const Pod& pod, int port) {
    // The lab's flow observer decodes one HTTP message per packet: with one request per
    // connection at a time, every /compute call shows as its own L7 flow and is audited
    // against the L7 rules, instead of riding unseen behind another in a pipelined batch.
    return {"--listen-address",
            pod.ip.str(),
            "--port",
            std::to_string(port),
            "--cluster",
            topology.cluster(topology.node(pod.node).cluster_id).name,
            "--node",
            pod.node,
            "--instance",
            pod.name,
            "--http-pipeline-depth",
            "1"};
}

std::vector<std::string> worker_urls() {
    std::vector<std::string> flags;
    for (const auto& worker : kWorkers) {
        flags.push_back(fmt::format("--{}-worker-url", worker.operation));
        flags.push_back(fmt::format("http://{}:{}", worker.pod, worker.port));
    }
    return flags;
}

std::vector<std::string> concat(std::vector<std::string> first,
                                const std::vector<std::string>& second) {
    first.insert(first.end(), second.begin(), second.end());
    return first;
}

std::string kafka_servers(const Topology& topology) {
    return fmt::format("{}:{}", topology.pod("kafka").ip.str(), kKafkaPort);
}

// Asked from the client pod, so the check also crosses the datapath: Kafka answers a metadata
// request, an HTTP service says 200 on /readyz.
bool ready(const Topology& topology, const ServiceSpec& spec) {
    const auto client = topology.netns(Topology::kClientPod);
    if (spec.name == "kafka") {
        // librdkafka's threads start from this one and so share its namespace.
        return in_netns(client, [&] {
            return broker_answers(kafka_servers(topology), std::chrono::milliseconds(500));
        });
    }
    const auto& pod = topology.pod(spec.pod);
    return run({"curl", "-sf", "-o", "/dev/null", "--max-time", "2",
                fmt::format("http://{}:{}/readyz", pod.ip.str(), spec.port)},
               launch_options(topology, std::string(Topology::kClientPod)))
               .exit_code == 0;
}

// The request topics and the results topic, created before any client starts, as the
// clusters' deployment does.
void create_kafka_topics(const Topology& topology) {
    const KafkaConfig config;
    std::vector<std::string> topics(config.request_topics.begin(), config.request_topics.end());
    topics.push_back(config.results_topic);
    const auto created = in_netns(topology.netns(Topology::kClientPod), [&] {
        return create_topics(kafka_servers(topology), topics, kKafkaPartitions,
                             std::chrono::seconds(15));
    });
    if (!created) {
        throw std::runtime_error("Kafka topics: " + created.error().message);
    }
}

}  // namespace

std::vector<ServiceSpec> service_specs(const Topology& topology) {
    const auto bin = fs::path(bin_dir());
    const auto data = lab_dir(topology.lab_name()) / "data";
    const std::vector<std::string> kafka_flags = {"--kafka-bootstrap-servers",
                                                  fmt::format("kafka:{}", kKafkaPort)};
    std::vector<ServiceSpec> specs;
    specs.push_back({"kafka",
                     "kafka",
                     kKafkaPort,
                     {fs::path(CALCMESH_SOURCE_DIR) / "scripts" / "kafka-broker", "run",
                      "--data-dir", data / "kafka", "--port", std::to_string(kKafkaPort), "--host",
                      topology.pod("kafka").ip.str()}});
    specs.push_back({"log-collector", "log-collector", 8082,
                     concat(concat({bin / "log_collector"},
                                   common_flags(topology, topology.pod("log-collector"), 8082)),
                            {"--data-dir", data / "log-collector"})});
    for (const auto& worker : kWorkers) {
        auto argv = concat({bin / "worker", "--operation", worker.operation},
                           common_flags(topology, topology.pod(worker.pod), worker.port));
        argv = concat(argv, {"--log-collector-url", "http://log-collector:8082"});
        specs.push_back({worker.pod, worker.pod, worker.port, concat(argv, kafka_flags)});
    }
    specs.push_back(
        {"job-submitter", "job-submitter", 8080,
         concat(concat(concat({bin / "job_submitter"},
                              common_flags(topology, topology.pod("job-submitter"), 8080)),
                       worker_urls()),
                kafka_flags)});
    specs.push_back({"help-page", "help-page", 8081,
                     concat(concat({bin / "help_page"},
                                   common_flags(topology, topology.pod("help-page"), 8081)),
                            worker_urls())});
    return specs;
}

void start_services(const Topology& topology, LabState& state, std::ostream& log) {
    const auto specs = service_specs(topology);
    for (const auto& spec : specs) {
        if (!fs::exists(spec.argv[0])) {
            throw std::runtime_error(fmt::format(
                "{} is missing: build it first (cmake --build --preset release)", spec.argv[0]));
        }
    }
    fs::create_directories(lab_dir(topology.lab_name()) / "data");
    for (const auto& spec : specs) {
        start_service(topology, state, spec, log);
    }
}

void start_service(const Topology& topology, LabState& state, const ServiceSpec& spec,
                   std::ostream& log) {
    start_process(state, spec.pod, spec.name, spec.argv, {});
    const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
    while (!ready(topology, spec)) {
        const auto& process = state.processes.back();
        if (process_start_time(process.pid) != process.start_time ||
            std::chrono::steady_clock::now() > deadline) {
            throw std::runtime_error(fmt::format(
                "{} did not come up in pod {}; see {}", spec.name, spec.pod,
                (lab_dir(topology.lab_name()) / "logs" / (spec.name + ".log")).string()));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    if (spec.name == "kafka") {
        create_kafka_topics(topology);
    }
    log << fmt::format("  {} ready on {}:{}\n", spec.name, topology.pod(spec.pod).ip.str(),
                       spec.port);
}

}  // namespace calcmesh::lab
