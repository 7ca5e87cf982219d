#pragma once

#include <memory>
#include <string>

#include "calcmesh/arithmetic.hpp"
#include "calcmesh/job.hpp"
#include "calcmesh/kafka.hpp"
#include "calcmesh/service.hpp"
#include "kafka_worker.hpp"
#include "log_shipper.hpp"

namespace calcmesh::worker {

/// Configuration of one worker process.
struct WorkerConfig {
    CommonConfig common;
    std::string operation = "addition";
    std::string log_collector_url = "http://127.0.0.1:8082";
    // The log shipper's own defaults.
    std::size_t log_queue_capacity = LogShipper::Options{}.capacity;
    std::size_t log_batch_size = LogShipper::Options{}.batch_size;
    unsigned log_linger_ms = static_cast<unsigned>(LogShipper::Options{}.linger.count());
    KafkaConfig kafka;
    std::string kafka_group;  ///< default: "<operation>_worker"

    /// Registers the worker's keys; the port defaults to 8091..8094 by operation.
    void add_to(ConfigParser& parser);
    /// "addition_worker" and so on.
    std::string service_name() const { return operation + "_worker"; }
};

/// A worker: computes one operation for `GET /compute`, describes itself at `GET /about`,
/// and reports every computation to log_collector.
class WorkerService final : public Application {
  public:
    WorkerService(Runtime& runtime, const WorkerConfig& config);

    void add_routes(Router& router) override;
    void start() override;
    Task<void> stop(std::chrono::steady_clock::time_point deadline) override;
    Readiness readiness() const override;

    /// Computes a job and counts it. Thread-safe.
    WorkerResult run_job(const JobInput& input, Mechanism mechanism);
    /// Queues the log record of a job computed by `run_job`, which arrived at `received`;
    /// `settled` runs once log_collector has it. Thread-safe.
    void log_job(const WorkerResult& result, Mechanism mechanism,
                 std::chrono::system_clock::time_point received, LogShipper::Settled settled = {});

  private:
    Task<Response> handle_compute(Request request);
    Task<Response> handle_about(Request request);

    Operation operation_;
    WorkerIdentity identity_;
    std::string about_html_;
    LogShipper log_shipper_;
    Counter* jobs_[2][2] = {};  // [mechanism][ok, error]
    Counter& refused_;
    std::unique_ptr<KafkaWorker> kafka_;  // null when Kafka is off
};

}  // namespace calcmesh::worker
