#include "kafka_worker.hpp"

#include <spdlog/spdlog.h>

#include "calcmesh/json_reader.hpp"

namespace calcmesh::worker {

/// Commits a request's offset once every part of its work is done: its result delivered and,
/// for a computed job, its log record acknowledged.
class KafkaWorker::Completion {
  public:
    Completion(std::weak_ptr<KafkaConsumer> consumer, const KafkaMessage& message, int parts)
        : consumer_(std::move(consumer)),
          topic_(message.topic),
          partition_(message.partition),
          offset_(message.offset),
          parts_left_(parts) {}

    /// Thread-safe: the producer's thread and the log shipper's loop each report their part.
    void part_done() {
        if (parts_left_.fetch_sub(1) != 1) {
            return;
        }
        if (const auto consumer = consumer_.lock()) {
            consumer->complete(topic_, partition_, offset_);
        }
    }

  private:
    std::weak_ptr<KafkaConsumer> consumer_;
    std::string topic_;
    std::int32_t partition_;
    std::int64_t offset_;
    std::atomic<int> parts_left_;
};

KafkaWorker::KafkaWorker(const KafkaConfig& config, Operation operation,
                         const std::string& group_id, const WorkerIdentity& identity,
                         Compute compute, Answered answered, Accepting accepting,
                         MetricsRegistry& metrics)
    : config_(config),
      operation_(operation),
      identity_(identity),
      compute_(std::move(compute)),
      answered_(std::move(answered)),
      rejected_(
          metrics.counter("calcmesh_kafka_messages_rejected_total",
                          "Request messages that could not be read or were not for this worker.")),
      producer_(config.bootstrap_servers, identity.instance, metrics) {
    consumer_ =
        std::make_shared<KafkaConsumer>(KafkaConsumer::Options{config.bootstrap_servers,
                                                               group_id,
                                                               identity.instance,
                                                               {config.request_topic(operation)},
                                                               KafkaConsumer::Mode::group,
                                                               std::move(accepting)},
                                        [this](const KafkaMessage& message) { handle(message); });
}

void KafkaWorker::stop_consuming() {
    consumer_->stop();
    // Results not delivered by now stay uncommitted: their requests go to the next owner.
    stopping_ = true;
    producer_.flush(std::chrono::seconds(5));
}

KafkaWorker::~KafkaWorker() {
    stop_consuming();
    consumer_.reset();
}

void KafkaWorker::handle(const KafkaMessage& message) {
    const auto received = std::chrono::system_clock::now();
    auto request = read_job_request(message.value);
    if (!request) {
        reject(message, request.error());
        return;
    }
    if (request.value().input.operation != operation_) {
        reject(message,
               {ErrorCode::unknown_operation,
                "this worker computes " + std::string(operation_name(operation_)) + ", not " +
                    std::string(operation_name(request.value().input.operation)),
                "operation"});
        return;
    }
    const ResultMessage answer{compute_(request.value().input), request.value().reply_to};
    auto completion = std::make_shared<Completion>(consumer_, message, 2);
    reply(answer.result.input.job_id, to_json_text(answer), completion);
    // The log record only once the result is on its way: it serializes a record and wakes the
    // log shipper's thread, which would otherwise delay the reply.
    answered_(answer.result, received, [completion] { completion->part_done(); });
}

void KafkaWorker::reject(const KafkaMessage& message, const Error& error) {
    rejected_.add();
    const auto json = parse_json_text(message.value);
    const bool has_job = json.is_object() && json.contains("job_id") &&
                         json["job_id"].is_string() &&
                         validate_job_id(json["job_id"].get<std::string>());
    spdlog::warn(
        "event=kafka_request_rejected topic={} partition={} offset={} job_id={} code={} "
        "message=\"{}\"",
        message.topic, message.partition, message.offset,
        has_job ? json["job_id"].get<std::string>() : "-", error_code_name(error.code),
        error.message);
    if (!has_job || !json.contains("reply_to") || !json["reply_to"].is_string()) {
        consumer_->complete(message.topic, message.partition, message.offset);
        return;
    }
    JobInput input;
    input.job_id = json["job_id"].get<std::string>();
    input.operation = operation_;
    // Nothing was computed, so there is no log record: the delivered answer completes it.
    reply(
        input.job_id,
        to_json_text(ResultMessage{WorkerResult{input, fail(error.code, error.message), identity_},
                                   json["reply_to"].get<std::string>()}),
        std::make_shared<Completion>(consumer_, message, 1));
}

void KafkaWorker::reply(const std::string& job_id, const std::string& text,
                        const std::shared_ptr<Completion>& completion) {
    auto queued = std::make_shared<std::atomic<bool>>(false);
    auto on_delivery = [this, job_id, text, completion, queued](Result<void> delivered) {
        if (delivered) {
            completion->part_done();
            return;
        }
        // The consumer has moved past the request, so nothing else would answer it before a
        // rebalance: send again until the broker takes it (each try waits out the producer's
        // message timeout). A message the producer could not even queue fails at once, and
        // is left to the redelivery: trying it again at once would only loop.
        const bool retry = queued->load() && !stopping_.load();
        spdlog::error("event=kafka_result_not_delivered job_id={} retry={} error=\"{}\"", job_id,
                      retry, delivered.error().message);
        if (retry) {
            reply(job_id, text, completion);
        }
    };
    producer_.produce(config_.results_topic, job_id, text, std::move(on_delivery));
    queued->store(true);
}

}  // namespace calcmesh::worker
