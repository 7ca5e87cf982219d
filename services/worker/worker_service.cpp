#include "worker_service.hpp"

#include <fmt/format.h>

#include <array>

#include "calcmesh/html.hpp"
#include "calcmesh/worker_urls.hpp"
#include "compute_query.hpp"

namespace calcmesh::worker {

namespace {

constexpr std::array<unsigned short, 4> kDefaultPorts = {8091, 8092, 8093, 8094};

std::string describe(Operation operation) {
    switch (operation) {
        case Operation::addition:
            return "Adds two 64-bit signed integers: a + b.";
        case Operation::subtraction:
            return "Subtracts two 64-bit signed integers: a - b.";
        case Operation::multiplication:
            return "Multiplies two 64-bit signed integers: a * b.";
        case Operation::division:
            return "Divides two 64-bit signed integers: the quotient a / b truncated toward zero, "
                   "and the remainder.";
    }
    return {};
}

std::string example(Operation operation) {
    switch (operation) {
        case Operation::addition:
            return R"(GET /compute?a=40&b=2 → {"result": 42, ...})";
        case Operation::subtraction:
            return R"(GET /compute?a=50&b=8 → {"result": 42, ...})";
        case Operation::multiplication:
            return R"(GET /compute?a=6&b=7 → {"result": 42, ...})";
        case Operation::division:
            return R"(GET /compute?a=7&b=2 → {"result": 3, "remainder": 1, ...})";
    }
    return {};
}

std::string about_fragment(Operation operation, const WorkerIdentity& identity) {
    return fmt::format(
        R"(<section class="worker" id="{0}">
  <h2>{0}</h2>
  <p>{1}</p>
  <p>Overflow beyond 64 bits and division by zero are reported as errors, never as results.</p>
  <p>Example: <code>{2}</code></p>
  <dl>
    <dt>version</dt><dd>{3}</dd>
    <dt>cluster</dt><dd>{4}</dd>
    <dt>node</dt><dd>{5}</dd>
    <dt>instance</dt><dd>{6}</dd>
  </dl>
</section>
)",
        html_escape(identity.worker), html_escape(describe(operation)),
        html_escape(example(operation)), CALCMESH_VERSION, html_escape(identity.cluster),
        html_escape(identity.node), html_escape(identity.instance));
}

Url collector_url(const std::string& text) {
    auto url = parse_url(text);
    if (!url) {
        throw std::invalid_argument("log-collector-url: " + url.error().message);
    }
    return url.value();
}

}  // namespace

void WorkerConfig::add_to(ConfigParser& parser) {
    common.add_to(parser);
    auto* port = parser.app().get_option("--port");
    parser.add("operation", operation, "addition, subtraction, multiplication or division")
        ->check(CLI::IsMember({"addition", "subtraction", "multiplication", "division"}));
    parser.add("log-collector-url", log_collector_url, "Base URL of log_collector");
    parser
        .add("log-queue-capacity", log_queue_capacity,
             "Log records kept while log_collector is unreachable; once they are this many, "
             "jobs are refused (503 log_backlog) and Kafka consumption pauses")
        ->check(whole_number(std::size_t{1}));
    parser.add("log-batch-size", log_batch_size, "Log records per request to log_collector")
        ->check(whole_number(std::size_t{1}));
    parser
        .add("log-linger-ms", log_linger_ms,
             "How long a log record may wait for others to share its request")
        ->check(whole_number(0u, 10'000u));
    kafka.add_to(parser);
    parser.add("kafka-group", kafka_group,
               "Consumer group of this worker's replicas (default: <operation>_worker)");
    parser.on_parsed([this, port] {
        if (kafka_group.empty()) {
            kafka_group = service_name();
        }
        if (port->count() == 0) {
            common.port =
                kDefaultPorts[static_cast<std::size_t>(parse_operation(operation).value())];
        }
    });
}

WorkerService::WorkerService(Runtime& runtime, const WorkerConfig& config)
    : operation_(parse_operation(config.operation).value()),
      identity_{worker_name(operation_), config.common.instance, config.common.cluster,
                config.common.node},
      about_html_(about_fragment(operation_, identity_)),
      log_shipper_(runtime, {.collector = collector_url(config.log_collector_url),
                             .capacity = config.log_queue_capacity,
                             .batch_size = config.log_batch_size,
                             .linger = std::chrono::milliseconds(config.log_linger_ms)}),
      refused_(runtime.metrics().counter(
          "calcmesh_jobs_refused_total",
          "Jobs refused because the log queue was full (503 log_backlog).")) {
    for (auto mechanism : {Mechanism::http, Mechanism::kafka}) {
        for (const bool ok : {true, false}) {
            jobs_[static_cast<int>(mechanism)][ok ? 0 : 1] = &runtime.metrics().counter(
                "calcmesh_jobs_total", "Jobs computed, by mechanism and outcome.",
                {{"operation", std::string(operation_name(operation_))},
                 {"mechanism", std::string(mechanism_name(mechanism))},
                 {"outcome", ok ? "ok" : "error"}});
        }
    }
    if (config.kafka.enabled()) {
        kafka_ = std::make_unique<KafkaWorker>(
            config.kafka, operation_, config.kafka_group, identity_,
            [this](const JobInput& input) { return run_job(input, Mechanism::kafka); },
            [this](const WorkerResult& result, std::chrono::system_clock::time_point received,
                   std::function<void()> logged) {
                log_job(result, Mechanism::kafka, received, std::move(logged));
            },
            [this] { return log_shipper_.has_room(); }, runtime.metrics());
    }
}

void WorkerService::add_routes(Router& router) {
    router.add(http::verb::get, "/compute",
               [this](Request request) { return handle_compute(std::move(request)); });
    router.add(http::verb::get, "/about",
               [this](Request request) { return handle_about(std::move(request)); });
}

void WorkerService::start() {
    log_shipper_.start();
}

Task<void> WorkerService::stop(std::chrono::steady_clock::time_point deadline) {
    // Kafka first, so that its last log records join the queue before the final flush; the
    // group is left after the flush, committing the requests whose records went out.
    if (kafka_) {
        kafka_->stop_consuming();
    }
    co_await log_shipper_.flush(deadline);
    kafka_.reset();
}

Readiness WorkerService::readiness() const {
    Readiness readiness{true,
                        {{"log_collector",
                          {{"reachable", log_shipper_.collector_reachable()},
                           {"queued_records", log_shipper_.queued()},
                           {"accepting_jobs", log_shipper_.has_room()}}}}};
    readiness.dependencies["kafka"] =
        kafka_ ? nlohmann::json{{"enabled", true},
                                {"broker_reachable", kafka_->broker_reachable()},
                                {"partitions_assigned", kafka_->assigned()}}
               : nlohmann::json{{"enabled", false}};
    return readiness;
}

WorkerResult WorkerService::run_job(const JobInput& input, Mechanism mechanism) {
    WorkerResult result{input, compute(input.operation, input.a, input.b), identity_};
    jobs_[static_cast<int>(mechanism)][result.outcome ? 0 : 1]->add();
    return result;
}

void WorkerService::log_job(const WorkerResult& result, Mechanism mechanism,
                            std::chrono::system_clock::time_point received,
                            LogShipper::Settled settled) {
    LogRecord record;
    // A Kafka request is redelivered after a crash, so its record's id comes from the job
    // and log_collector stores it once; an HTTP request is never redelivered, and a caller of
    // /compute may reuse a job id for another computation, so its record's id is fresh.
    record.record_id = mechanism == Mechanism::kafka ? job_record_id(result.input) : new_id("r-");
    record.input = result.input;
    record.outcome = result.outcome;
    record.mechanism = mechanism;
    record.identity = identity_;
    record.received_at = format_time(received);
    record.completed_at = format_time(std::chrono::system_clock::now());
    log_shipper_.enqueue(record, std::move(settled));
}

Task<Response> WorkerService::handle_compute(Request request) {
    const auto received = std::chrono::system_clock::now();
    const auto input = parse_compute_query(request, operation_);
    if (!input) {
        co_return error_response(input.error());
    }

    if (!log_shipper_.has_room()) {
        // A job answered now could not be logged: refuse it rather than lose its record.
        refused_.add();
        co_return error_response(
            {ErrorCode::log_backlog,
             identity_.worker + " holds " + std::to_string(log_shipper_.queued()) +
                 " log records that log_collector has not acknowledged (reachable: " +
                 (log_shipper_.collector_reachable() ? "yes" : "no") + "); retry shortly"});
    }
    // A domain error (overflow, division by zero) keeps the full result form, with "error"
    // in place of "result", so the caller still learns which worker answered.
    const auto result = run_job(input.value(), Mechanism::http);
    log_job(result, Mechanism::http, received);
    co_return json_text_response(result.outcome ? 200 : http_status(result.outcome.error().code),
                                 to_json_text(result));
}

Task<Response> WorkerService::handle_about(Request /*request*/) {
    co_return text_response(200, about_html_, "text/html; charset=utf-8");
}

}  // namespace calcmesh::worker
