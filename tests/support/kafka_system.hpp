#pragma once

#include <array>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "calcmesh/arithmetic.hpp"
#include "service_process.hpp"

namespace calcmesh::testing {

/// Runs a shell command and returns what it printed.
std::string run_command(const std::string& command);

/// The port a broker of scripts/kafka-broker listens on (DIR/broker.port).
std::string broker_port(const std::filesystem::path& data_dir);

/// The broker every Kafka test of a run shares (ctest's fixture, see tests/CMakeLists.txt).
std::string shared_bootstrap();

/// A broker of a test's own, for tests that stop or kill it: started on a free port, and
/// restarted on the same ports so that its clients find it again.
class OwnBroker {
  public:
    explicit OwnBroker(const std::string& name);
    ~OwnBroker();  ///< stops it

    std::string bootstrap() const { return "127.0.0.1:" + port_; }
    /// SIGTERM and wait (scripts/kafka-broker stop); true on success.
    bool stop();
    /// SIGKILL, as a crash: nothing is flushed or closed.
    void kill();
    /// Starts it again on the same ports and data; returns once it answers.
    void restart();

  private:
    std::string script(const std::string& command) const;

    TempDir dir_;
    std::string port_;
    std::string controller_port_;
};

/// Topic names of their own for each test, so tests never see each other's messages.
struct Topics {
    explicit Topics(const std::string& bootstrap);
    std::vector<std::string> flags() const;
    const std::string& request(Operation operation) const {
        return names[static_cast<std::size_t>(operation)];
    }
    const std::string& results() const { return names[4]; }
    std::array<std::string, 5> names;
};

/// A system on a Kafka broker: log_collector, the workers asked for (each reachable over HTTP
/// and Kafka), and job_submitter.
class KafkaSystem {
  public:
    KafkaSystem(const std::string& name, std::string bootstrap,
                const std::vector<Operation>& operations,
                std::vector<std::string> submitter_args = {},
                std::vector<std::string> worker_args = {});

    std::vector<std::string> common_args() const;
    /// Starts (or replaces) the worker of `operation` and waits for its partitions.
    void start_worker(Operation operation);
    /// Starts one more replica of the worker of `operation`, in the same consumer group.
    ServiceProcess& start_replica(Operation operation);
    void start_submitter();

    ClientResponse submit(const nlohmann::json& body);
    nlohmann::json job(const std::string& id);
    nlohmann::json logs(const std::string& query = "");

    std::unique_ptr<ServiceProcess>& worker(Operation operation) {
        return workers_[static_cast<std::size_t>(operation)];
    }
    std::unique_ptr<ServiceProcess>& collector() { return collector_; }
    std::unique_ptr<ServiceProcess>& submitter() { return submitter_; }
    const Topics& topics() const { return topics_; }
    const std::string& bootstrap() const { return bootstrap_; }
    const std::vector<std::string>& submitter_args() const { return submitter_args_; }
    const std::filesystem::path& dir() const { return dir_.path(); }
    std::filesystem::path data_dir() const { return dir_.path() / "data"; }

  private:
    std::unique_ptr<ServiceProcess> new_worker(Operation operation);
    static void wait_ready(ServiceProcess& service, const std::string& flag);

    TempDir dir_;
    std::string bootstrap_;
    Topics topics_;
    std::vector<std::string> worker_args_;
    std::unique_ptr<ServiceProcess> collector_;
    std::array<std::unique_ptr<ServiceProcess>, 4> workers_;
    std::vector<std::unique_ptr<ServiceProcess>> replicas_;
    std::unique_ptr<ServiceProcess> submitter_;
    std::vector<std::string> submitter_args_;
};

}  // namespace calcmesh::testing
