#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "calcmesh/job.hpp"
#include "calcmesh/kafka.hpp"
#include "calcmesh/metrics.hpp"

namespace calcmesh::worker {

/// The worker's Kafka interface: consumes its operation's request topic in the consumer
/// group of its operation, computes, and produces each result to the results topic. An offset
/// is committed only after its result is delivered (at least once). A message that cannot
/// be read is answered with an error result when it names a job, counted, logged, and passed
/// over, so it never blocks the partition.
class KafkaWorker {
  public:
    using Compute = std::function<WorkerResult(const JobInput&)>;
    /// Runs once a result has been handed to the producer, with the time its request arrived.
    using Answered =
        std::function<void(const WorkerResult&, std::chrono::system_clock::time_point received)>;

    KafkaWorker(const KafkaConfig& config, Operation operation, const std::string& group_id,
                const WorkerIdentity& identity, Compute compute, Answered answered,
                MetricsRegistry& metrics);
    /// Stops consuming, waits for the results in flight, and leaves the group with their
    /// offsets committed.
    ~KafkaWorker();

    bool broker_reachable() const { return producer_.broker_reachable(); }
    bool assigned() const { return consumer_->ready(); }

  private:
    void handle(const KafkaMessage& message);
    void reject(const KafkaMessage& message, const Error& error);
    void reply(const KafkaMessage& message, const ResultMessage& result);

    KafkaConfig config_;
    Operation operation_;
    WorkerIdentity identity_;
    Compute compute_;
    Answered answered_;
    Counter& rejected_;
    KafkaProducer producer_;
    std::unique_ptr<KafkaConsumer> consumer_;  // last: its thread uses everything above
};

}  // namespace calcmesh::worker
