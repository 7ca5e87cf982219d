#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "calcmesh/async_event.hpp"
#include "calcmesh/kafka.hpp"
#include "calcmesh/service.hpp"
#include "transport.hpp"

namespace calcmesh::job_submitter {

/// Request/reply over Kafka: produces the job to its operation's request topic, with this
/// instance's id in `reply_to`, and waits for the result with the same job id on the results
/// topic. Every instance reads all of the results topic and keeps the answers meant for it,
/// so several replicas each get their own. A result that arrives after its deadline, or
/// twice, goes to `on_unclaimed`.
class KafkaTransport final : public JobTransport {
  public:
    using Unclaimed = std::function<void(const WorkerResult&)>;

    KafkaTransport(Runtime& runtime, const KafkaConfig& config, Unclaimed on_unclaimed);
    ~KafkaTransport() override;

    Task<Result<WorkerResult>> run(JobInput input,
                                   std::chrono::steady_clock::time_point deadline) override;
    /// The broker's state, for /readyz.
    nlohmann::json state() const;

  private:
    using Waiter = AsyncEvent<Result<WorkerResult>>;
    void on_result(const KafkaMessage& message);
    std::shared_ptr<Waiter> claim(const std::string& job_id);
    bool usable() const;
    /// Whether the broker is usable, waiting while the transport is still starting.
    Task<bool> wait_until_usable(std::chrono::steady_clock::time_point deadline);

    KafkaConfig config_;
    const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
    std::string instance_;
    Unclaimed on_unclaimed_;
    std::mutex mutex_;
    std::unordered_map<std::string, std::shared_ptr<Waiter>> pending_;
    Counter& unclaimed_;
    KafkaProducer producer_;
    std::unique_ptr<KafkaConsumer> consumer_;  // last: its thread uses everything above
};

}  // namespace calcmesh::job_submitter
