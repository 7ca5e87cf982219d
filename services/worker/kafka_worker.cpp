#include "kafka_worker.hpp"

#include <spdlog/spdlog.h>

namespace calcmesh::worker {

KafkaWorker::KafkaWorker(const KafkaConfig& config, Operation operation,
                         const std::string& group_id, const WorkerIdentity& identity,
                         Compute compute, Answered answered, MetricsRegistry& metrics)
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
        std::make_unique<KafkaConsumer>(KafkaConsumer::Options{config.bootstrap_servers,
                                                               group_id,
                                                               identity.instance,
                                                               {config.request_topic(operation)},
                                                               KafkaConsumer::Mode::group},
                                        [this](const KafkaMessage& message) { handle(message); });
}

KafkaWorker::~KafkaWorker() {
    consumer_->stop();
    producer_.flush(std::chrono::seconds(5));
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
    reply(message, answer);
    // The log record only once the result is on its way: it serializes a record and wakes the
    // log shipper's thread, which would otherwise delay the reply.
    answered_(answer.result, received);
}

void KafkaWorker::reject(const KafkaMessage& message, const Error& error) {
    rejected_.add();
    const auto json = nlohmann::json::parse(message.value, nullptr, false);
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
    reply(message, ResultMessage{WorkerResult{input, fail(error.code, error.message), identity_},
                                 json["reply_to"].get<std::string>()});
}

void KafkaWorker::reply(const KafkaMessage& message, const ResultMessage& result) {
    auto* consumer = consumer_.get();
    producer_.produce(
        config_.results_topic, result.result.input.job_id, to_json_text(result),
        [consumer, topic = message.topic, partition = message.partition, offset = message.offset,
         job_id = result.result.input.job_id](Result<void> delivered) {
            if (delivered) {
                consumer->complete(topic, partition, offset);
            } else {
                // Not committed: the request is redelivered after a restart or a
                // rebalance, and the duplicate answer is ignored by job_submitter.
                spdlog::error("event=kafka_result_not_delivered job_id={} error=\"{}\"", job_id,
                              delivered.error().message);
            }
        });
}

}  // namespace calcmesh::worker
