#pragma once

#include <atomic>
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
/// is committed only after its result is delivered and its log record is acknowledged by
/// log_collector (at least once: a request redelivered after a crash is answered again, and
/// its record, whose id is derived from the job, is stored once). While the log queue is
/// full, consumption is paused and the requests wait in the broker. A message that cannot be
/// read is answered with an error result when it names a job, counted, logged, and passed
/// over, so it never blocks the partition.
class KafkaWorker {
  public:
    using Compute = std::function<WorkerResult(const JobInput&)>;
    /// Runs once a result has been handed to the producer, with the time its request arrived;
    /// queues the job's log record and runs `logged` once log_collector has it.
    using Answered =
        std::function<void(const WorkerResult&, std::chrono::system_clock::time_point received,
                           std::function<void()> logged)>;
    /// Whether another request may be taken now (false while the log queue is full).
    using Accepting = std::function<bool()>;

    KafkaWorker(const KafkaConfig& config, Operation operation, const std::string& group_id,
                const WorkerIdentity& identity, Compute compute, Answered answered,
                Accepting accepting, MetricsRegistry& metrics);
    /// Leaves the group, committing the offsets of the requests that are done.
    ~KafkaWorker();

    /// Stops taking requests and waits for the results in flight; requests whose log record
    /// is still queued complete if it is acknowledged before the destructor runs.
    void stop_consuming();

    bool broker_reachable() const { return producer_.broker_reachable(); }
    bool assigned() const { return consumer_->ready(); }

  private:
    class Completion;
    void handle(const KafkaMessage& message);
    void reject(const KafkaMessage& message, const Error& error);
    /// Produces a result; its delivery completes its part of the request.
    void reply(const std::string& job_id, const std::string& text,
               const std::shared_ptr<Completion>& completion);

    KafkaConfig config_;
    Operation operation_;
    WorkerIdentity identity_;
    Compute compute_;
    Answered answered_;
    Counter& rejected_;
    std::atomic<bool> stopping_{false};  // before producer_: its last callbacks read it
    KafkaProducer producer_;
    /// Last: its thread uses everything above. Shared with the completions of the requests
    /// in flight, which may outlive this object (a log record acknowledged after shutdown).
    std::shared_ptr<KafkaConsumer> consumer_;
};

}  // namespace calcmesh::worker
