#include "kafka_system.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <stdexcept>

#include "calcmesh/kafka.hpp"

namespace calcmesh::testing {

using nlohmann::json;

std::string run_command(const std::string& command) {
    std::string output;
    FILE* pipe = ::popen(command.c_str(), "r");
    if (!pipe) {
        ADD_FAILURE() << "cannot run " << command;
        return output;
    }
    std::array<char, 4096> buffer{};
    std::size_t got = 0;
    while ((got = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
        output.append(buffer.data(), got);
    }
    ::pclose(pipe);
    return output;
}

std::string broker_port(const std::filesystem::path& data_dir) {
    std::ifstream in(data_dir / "broker.port");
    std::string port;
    in >> port;
    return port;
}

std::string shared_bootstrap() {
    const char* dir = std::getenv("CALCMESH_TEST_KAFKA_DIR");
    if (!dir) {
        throw std::runtime_error(
            "CALCMESH_TEST_KAFKA_DIR is not set: run these tests through ctest");
    }
    return "127.0.0.1:" + broker_port(dir);
}

// ---- OwnBroker --------------------------------------------------------------------------------

OwnBroker::OwnBroker(const std::string& name) : dir_(name) {
    if (std::system(script("start --port 0").c_str()) != 0) {
        throw std::runtime_error(
            "the broker did not start: " +
            run_command("tail -n 30 " + (dir_.path() / "broker.log").string()));
    }
    port_ = broker_port(dir_.path());
    // The controller's port too, so that a restart finds the same quorum.
    std::ifstream properties(dir_.path() / "server.properties");
    const std::string text{std::istreambuf_iterator<char>(properties), {}};
    std::smatch match;
    if (!std::regex_search(text, match,
                           std::regex(R"(controller\.quorum\.voters=1@[^:]+:(\d+))"))) {
        throw std::runtime_error("no controller port in " +
                                 (dir_.path() / "server.properties").string());
    }
    controller_port_ = match[1];
}

OwnBroker::~OwnBroker() {
    stop();
}

std::string OwnBroker::script(const std::string& command) const {
    return std::string(CALCMESH_SOURCE_DIR) + "/scripts/kafka-broker " + command + " --data-dir " +
           dir_.path().string() + " > /dev/null";
}

bool OwnBroker::stop() {
    return std::system(script("stop").c_str()) == 0;
}

void OwnBroker::kill() {
    std::ifstream in(dir_.path() / "broker.pid");
    pid_t pid = 0;
    if (!(in >> pid) || pid <= 1 || ::kill(pid, SIGKILL) != 0) {
        throw std::runtime_error("no broker to kill in " + dir_.path().string());
    }
    // Gone once its port is free again.
    if (!eventually([&] { return run_command("ss -Hltn 'sport = :" + port_ + "'").empty(); },
                    std::chrono::seconds(10))) {
        throw std::runtime_error("the killed broker still listens on " + port_);
    }
}

void OwnBroker::restart() {
    if (std::system(
            script("start --port " + port_ + " --controller-port " + controller_port_).c_str()) !=
        0) {
        throw std::runtime_error(
            "the broker did not restart: " +
            run_command("tail -n 30 " + (dir_.path() / "broker.log").string()));
    }
}

// ---- Topics -----------------------------------------------------------------------------------

Topics::Topics(const std::string& bootstrap) {
    static int counter = 0;
    const auto prefix = "t" + std::to_string(::getpid()) + "_" + std::to_string(++counter) + "_";
    for (const auto operation : kAllOperations) {
        names[static_cast<std::size_t>(operation)] =
            prefix + std::string(operation_name(operation)) + "_requests";
    }
    names[4] = prefix + "results";
    auto created = create_topics(bootstrap, std::vector<std::string>(names.begin(), names.end()), 3,
                                 std::chrono::seconds(20));
    if (!created) {
        throw std::runtime_error(created.error().message);
    }
}

std::vector<std::string> Topics::flags() const {
    std::vector<std::string> flags;
    for (const auto operation : kAllOperations) {
        flags.push_back("--topic-" + std::string(operation_name(operation)) + "-requests");
        flags.push_back(names[static_cast<std::size_t>(operation)]);
    }
    flags.push_back("--topic-results");
    flags.push_back(names[4]);
    return flags;
}

// ---- KafkaSystem ------------------------------------------------------------------------------

KafkaSystem::KafkaSystem(const std::string& name, std::string bootstrap,
                         const std::vector<Operation>& operations,
                         std::vector<std::string> submitter_args,
                         std::vector<std::string> worker_args)
    : dir_(name),
      bootstrap_(std::move(bootstrap)),
      topics_(bootstrap_),
      worker_args_(std::move(worker_args)) {
    collector_ = std::make_unique<ServiceProcess>(
        "log_collector", std::vector<std::string>{"--data-dir", data_dir().string()}, dir_.path());
    for (const auto operation : operations) {
        start_worker(operation);
    }
    auto args = common_args();
    args.insert(args.end(), submitter_args.begin(), submitter_args.end());
    for (const auto operation : kAllOperations) {
        // An operation without a worker gets an unused port: nothing answers there.
        const auto& started = worker(operation);
        args.push_back("--" + std::string(operation_name(operation)) + "-worker-url");
        args.push_back(started ? started->url() : "http://127.0.0.1:1");
    }
    submitter_args_ = args;
    start_submitter();
}

std::vector<std::string> KafkaSystem::common_args() const {
    auto args = topics_.flags();
    args.push_back("--kafka-bootstrap-servers");
    args.push_back(bootstrap_);
    return args;
}

std::unique_ptr<ServiceProcess> KafkaSystem::new_worker(Operation operation) {
    auto args = common_args();
    args.insert(args.end(), {"--operation", std::string(operation_name(operation)),
                             "--log-collector-url", collector_->url()});
    args.insert(args.end(), worker_args_.begin(), worker_args_.end());
    auto worker = std::make_unique<ServiceProcess>("worker", args, dir_.path());
    wait_ready(*worker, "partitions_assigned");
    return worker;
}

void KafkaSystem::start_worker(Operation operation) {
    workers_[static_cast<std::size_t>(operation)] = new_worker(operation);
}

ServiceProcess& KafkaSystem::start_replica(Operation operation) {
    replicas_.push_back(new_worker(operation));
    return *replicas_.back();
}

void KafkaSystem::start_submitter() {
    submitter_ = std::make_unique<ServiceProcess>("job_submitter", submitter_args_, dir_.path());
    wait_ready(*submitter_, "reading_results");
}

ClientResponse KafkaSystem::submit(const json& body) {
    return post(submitter_->url() + "/submit", body.dump());
}

json KafkaSystem::job(const std::string& id) {
    return json::parse(get(submitter_->url() + "/jobs/" + id).body);
}

json KafkaSystem::logs(const std::string& query) {
    return json::parse(get(collector_->url() + "/logs" + query).body);
}

void KafkaSystem::wait_ready(ServiceProcess& service, const std::string& flag) {
    const bool ready = eventually(
        [&] {
            const auto body = json::parse(get(service.url() + "/readyz").body, nullptr, false);
            return body.is_object() && body["dependencies"]["kafka"].value(flag, false) &&
                   body["dependencies"]["kafka"].value("broker_reachable", false);
        },
        std::chrono::seconds(30));
    if (!ready) {
        throw std::runtime_error("no Kafka assignment:\n" + service.output());
    }
}

}  // namespace calcmesh::testing
