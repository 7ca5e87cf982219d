#include "kafka_transport.hpp"

#include <spdlog/spdlog.h>

namespace calcmesh::job_submitter {

KafkaTransport::KafkaTransport(Runtime& runtime, const KafkaConfig& config, Unclaimed on_unclaimed)
    : config_(config),
      instance_(runtime.config().instance),
      on_unclaimed_(std::move(on_unclaimed)),
      unclaimed_(runtime.metrics().counter(
          "calcmesh_kafka_results_unclaimed_total",
          "Results for this instance that nobody waited for any more (late or duplicate).")),
      producer_(config.bootstrap_servers, instance_, runtime.metrics()) {
    consumer_ = std::make_unique<KafkaConsumer>(
        KafkaConsumer::Options{config.bootstrap_servers,
                               instance_,
                               instance_,
                               {config.results_topic},
                               KafkaConsumer::Mode::tail},
        [this](const KafkaMessage& message) { on_result(message); });
}

KafkaTransport::~KafkaTransport() {
    consumer_->stop();
}

nlohmann::json KafkaTransport::state() const {
    return {{"enabled", true},
            {"broker_reachable", producer_.broker_reachable()},
            {"reading_results", consumer_->ready()}};
}

std::shared_ptr<KafkaTransport::Waiter> KafkaTransport::claim(const std::string& job_id) {
    std::lock_guard lock(mutex_);
    const auto it = pending_.find(job_id);
    if (it == pending_.end()) {
        return nullptr;
    }
    auto waiter = std::move(it->second);
    pending_.erase(it);
    return waiter;
}

bool KafkaTransport::usable() const {
    return producer_.broker_reachable() && consumer_->ready();
}

Task<bool> KafkaTransport::wait_until_usable(std::chrono::steady_clock::time_point deadline) {
    // Just after start-up the first metadata probe, or the assignment of the results topic on
    // a reachable broker, may still be under way: a job sent as soon as /readyz answers must
    // not be refused for that. Otherwise a broker that is not usable is down: fail fast.
    constexpr auto kStartupGrace = std::chrono::seconds(10);
    const auto starting = [this] {
        return !producer_.broker_probed() || (producer_.broker_reachable() && !consumer_->ready());
    };
    const auto until = std::min(deadline, started_ + kStartupGrace);
    net::steady_timer timer(co_await net::this_coro::executor);
    while (starting() && std::chrono::steady_clock::now() < until) {
        timer.expires_after(std::chrono::milliseconds(20));
        boost::system::error_code ignored;
        co_await timer.async_wait(net::redirect_error(net::use_awaitable, ignored));
    }
    co_return usable();
}

Task<Result<WorkerResult>> KafkaTransport::run(JobInput input,
                                               std::chrono::steady_clock::time_point deadline) {
    // Fail fast rather than queue a job no broker will take.
    if (!co_await wait_until_usable(deadline)) {
        co_return fail(
            ErrorCode::broker_unavailable,
            "the Kafka broker at " + config_.bootstrap_servers +
                " is unreachable; the kafka mechanism is unavailable (http still works)");
    }
    auto waiter = std::make_shared<Waiter>(co_await net::this_coro::executor);
    {
        std::lock_guard lock(mutex_);
        pending_[input.job_id] = waiter;
    }
    const auto job_id = input.job_id;
    const auto request = to_json_text(JobRequestMessage{input, instance_});
    producer_.produce(config_.request_topic(input.operation), job_id, request,
                      [this, job_id](Result<void> delivered) {
                          if (!delivered) {
                              if (auto failed = claim(job_id)) {
                                  failed->deliver(delivered.error());
                              }
                          }
                      });
    const auto timeout_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    auto result = co_await waiter->wait_until(deadline);
    if (!result) {
        claim(job_id);  // a result that comes now is late: on_unclaimed handles it
        co_return fail(ErrorCode::job_timeout,
                       "no result for job " + job_id + " on " + config_.results_topic + " within " +
                           std::to_string(timeout_ms.count()) + " ms; it stays pending at /jobs/" +
                           job_id + " and completes there if the result arrives later");
    }
    co_return std::move(*result);
}

void KafkaTransport::on_result(const KafkaMessage& message) {
    auto parsed = read_result_message(message.value);
    if (!parsed) {
        spdlog::warn("event=kafka_result_unreadable partition={} offset={} error=\"{}\"",
                     message.partition, message.offset, parsed.error().message);
        return;
    }
    if (parsed.value().reply_to != instance_) {
        return;  // another job_submitter instance's answer
    }
    auto& result = parsed.value().result;
    if (auto waiter = claim(result.input.job_id)) {
        waiter->deliver(std::move(result));
        return;
    }
    unclaimed_.add();
    on_unclaimed_(result);
}

}  // namespace calcmesh::job_submitter
