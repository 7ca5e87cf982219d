#include "services.hpp"

#include <fmt/format.h>
#include <fmt/ostream.h>

#include <chrono>
#include <filesystem>
#include <ostream>
#include <stdexcept>
#include <thread>

#include "lab.hpp"

namespace calcmesh::lab {

namespace fs = std::filesystem;

namespace {

constexpr int kKafkaPort = 9092;
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
    return {"--listen-address", pod.ip.str(),
            "--port",           std::to_string(port),
            "--cluster",        topology.cluster(topology.node(pod.node).cluster_id).name,
            "--node",           pod.node,
            "--instance",       pod.name};
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

// The service answers once its port accepts and, for HTTP, /readyz says 200; asked from the
// client pod, so the check also crosses the datapath.
bool ready(const Topology& topology, const ServiceSpec& spec) {
    const auto& pod = topology.pod(spec.pod);
    if (spec.name == "kafka") {
        auto options = launch_options(topology, std::string(Topology::kClientPod));
        return run({"bash", "-c", fmt::format("exec 3<>/dev/tcp/{}/{}", pod.ip.str(), spec.port)},
                   options)
                   .exit_code == 0;
    }
    return run({"curl", "-sf", "-o", "/dev/null", "--max-time", "2",
                fmt::format("http://{}:{}/readyz", pod.ip.str(), spec.port)},
               launch_options(topology, std::string(Topology::kClientPod)))
               .exit_code == 0;
}

}  // namespace

std::vector<ServiceSpec> service_specs(const Topology& topology) {
    const auto bin = fs::path(bin_dir());
    const auto data = lab_dir(topology.lab_name()) / "data";
    const auto broker = fs::path(CALCMESH_SOURCE_DIR) / "scripts" / "kafka-broker";
    // The Kafka mechanism needs the broker script; without it the services run HTTP only.
    const bool kafka = fs::exists(broker);
    std::vector<std::string> kafka_flags;
    if (kafka)
        kafka_flags = {"--kafka-bootstrap-servers", fmt::format("kafka:{}", kKafkaPort)};

    std::vector<ServiceSpec> specs;
    if (kafka) {
        specs.push_back({"kafka",
                         "kafka",
                         kKafkaPort,
                         {broker, "run", "--data-dir", data / "kafka", "--port",
                          std::to_string(kKafkaPort), "--host", topology.pod("kafka").ip.str()}});
    }
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
        log << fmt::format("  {} ready on {}:{}\n", spec.name, topology.pod(spec.pod).ip.str(),
                           spec.port);
    }
}

}  // namespace calcmesh::lab
