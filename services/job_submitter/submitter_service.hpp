#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <optional>
#include <utility>

#include "calcmesh/kafka.hpp"
#include "calcmesh/service.hpp"
#include "calcmesh/worker_urls.hpp"
#include "job_table.hpp"
#include "submit_request.hpp"
#include "transport.hpp"

namespace calcmesh::job_submitter {

/// Configuration of job_submitter.
struct SubmitterConfig {
    CommonConfig common;
    WorkerUrls workers;
    KafkaConfig kafka;
    unsigned worker_timeout_ms = 5'000;
    unsigned kafka_timeout_ms = 10'000;
    std::size_t jobs_capacity = 10'000;
    std::size_t max_in_flight = 1'024;

    void add_to(ConfigParser& parser);
};

/// job_submitter: takes jobs at `POST /submit`, has the right worker compute them over the
/// chosen mechanism, and keeps them for `GET /jobs/<id>`.
class SubmitterService final : public Application {
  public:
    SubmitterService(Runtime& runtime, const SubmitterConfig& config);

    void add_routes(Router& router) override;
    Readiness readiness() const override;

  private:
    /// One of the max-in-flight places for running jobs; given back when destroyed, so also
    /// when a job's coroutine ends without having run.
    class JobSlot {
      public:
        explicit JobSlot(std::atomic<std::size_t>& taken) : taken_(&taken) {}
        JobSlot(JobSlot&& other) noexcept : taken_(std::exchange(other.taken_, nullptr)) {}
        JobSlot& operator=(JobSlot&&) = delete;
        ~JobSlot() {
            if (taken_) {
                taken_->fetch_sub(1);
            }
        }

      private:
        std::atomic<std::size_t>* taken_;
    };
    /// A slot for one more running job, or nothing when max-in-flight jobs run.
    std::optional<JobSlot> admit();

    Task<Response> handle_submit(Request request);
    Task<Response> handle_job(Request request);
    Task<Response> handle_index(Request request);
    /// Runs a job the table already holds and returns the response for it.
    Task<Response> execute(JobInput input, Mechanism mechanism, JobSlot slot);
    Task<void> execute_detached(JobInput input, Mechanism mechanism, JobSlot slot);
    /// A Kafka result nobody waited for: completes a job that timed out, ignores a duplicate.
    void finish_late(const WorkerResult& result);

    Runtime& runtime_;
    std::array<std::chrono::milliseconds, 2> timeouts_;  // by Mechanism
    JobTable jobs_;
    std::array<JobTransportPtr, 2> transports_;  // by Mechanism
    class KafkaTransport* kafka_ = nullptr;      // transports_[kafka], if enabled
    Counter* submitted_[2] = {};
    /// Jobs running now, against max-in-flight: past it, /submit answers 503 at once instead
    /// of holding ever more jobs (and memory) when clients send faster than workers answer.
    std::size_t max_in_flight_;
    std::atomic<std::size_t> in_flight_{0};
    Counter& refused_;
};

}  // namespace calcmesh::job_submitter
