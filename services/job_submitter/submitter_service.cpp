#include "submitter_service.hpp"

#include <spdlog/spdlog.h>

#include "http_transport.hpp"
#include "index_page.hpp"
#include "kafka_transport.hpp"

namespace calcmesh::job_submitter {

void SubmitterConfig::add_to(ConfigParser& parser) {
    common.port = 8080;
    common.add_to(parser);
    workers.add_to(parser);
    kafka.add_to(parser);
    parser
        .add("worker-timeout-ms", worker_timeout_ms,
             "Deadline for a worker's answer over HTTP (504 after it)")
        ->check(whole_number(1u));
    parser
        .add("kafka-timeout-ms", kafka_timeout_ms,
             "Deadline for a result through Kafka (504 after it; the job completes later)")
        ->check(whole_number(1u));
    parser
        .add("jobs-capacity", jobs_capacity,
             "Jobs kept for GET /jobs/<id>; past it the one that ended first is forgotten "
             "(a pending job only when none has ended)")
        ->check(whole_number(std::size_t{1}));
    parser
        .add("max-in-flight", max_in_flight,
             "Jobs running at once; more are refused with 503 (overloaded) until some finish")
        ->check(whole_number(std::size_t{1}));
}

SubmitterService::SubmitterService(Runtime& runtime, const SubmitterConfig& config)
    : runtime_(runtime),
      timeouts_{std::chrono::milliseconds(config.worker_timeout_ms),
                std::chrono::milliseconds(config.kafka_timeout_ms)},
      jobs_(config.jobs_capacity),
      max_in_flight_(config.max_in_flight),
      refused_(runtime.metrics().counter(
          "calcmesh_jobs_refused_total",
          "Jobs refused at /submit with 503 because max-in-flight jobs were running.")) {
    transports_[static_cast<int>(Mechanism::http)] =
        std::make_unique<HttpTransport>(runtime, config.workers.parse());
    if (config.kafka.enabled()) {
        auto kafka = std::make_unique<KafkaTransport>(
            runtime, config.kafka, [this](const WorkerResult& result) { finish_late(result); });
        kafka_ = kafka.get();
        transports_[static_cast<int>(Mechanism::kafka)] = std::move(kafka);
    }
    for (auto mechanism : {Mechanism::http, Mechanism::kafka}) {
        submitted_[static_cast<int>(mechanism)] = &runtime.metrics().counter(
            "calcmesh_jobs_submitted_total", "Jobs accepted at /submit, by mechanism.",
            {{"mechanism", std::string(mechanism_name(mechanism))}});
    }
    runtime.metrics().gauge("calcmesh_jobs_kept", "Jobs kept for GET /jobs/<id>.",
                            [this] { return static_cast<double>(jobs_.size()); });
}

Readiness SubmitterService::readiness() const {
    return {true, {{"kafka", kafka_ ? kafka_->state() : nlohmann::json{{"enabled", false}}}}};
}

void SubmitterService::finish_late(const WorkerResult& result) {
    if (jobs_.finish(result.input.job_id, result.outcome, result.identity)) {
        spdlog::info("event=late_result_completed job_id={}", result.input.job_id);
    } else {
        spdlog::info(
            "event=result_ignored job_id={} reason=\"duplicate, or not a job of this instance\"",
            result.input.job_id);
    }
}

void SubmitterService::add_routes(Router& router) {
    router.add(http::verb::post, "/submit",
               [this](Request request) { return handle_submit(std::move(request)); });
    router.add_prefix(http::verb::get, "/jobs/", "/jobs/{id}",
                      [this](Request request) { return handle_job(std::move(request)); });
    router.add(http::verb::get, "/",
               [this](Request request) { return handle_index(std::move(request)); });
}

Task<Response> SubmitterService::handle_submit(Request request) {
    auto submit = parse_submit_request(request);
    if (!submit) {
        co_return error_response(submit.error());
    }
    const auto& job_request = submit.value();
    auto slot = admit();
    if (!slot) {
        refused_.add();
        co_return error_response(
            {ErrorCode::overloaded, "job_submitter is running " + std::to_string(max_in_flight_) +
                                        " jobs (max-in-flight); retry shortly"});
    }
    Job job;
    job.input = {new_id("j-"), job_request.operation, job_request.a, job_request.b};
    job.mechanism = job_request.mechanism;
    job.submitted_at = std::chrono::system_clock::now();
    job.started = std::chrono::steady_clock::now();
    jobs_.add(job);
    submitted_[static_cast<int>(job.mechanism)]->add();

    if (!job_request.wait) {
        net::co_spawn(co_await net::this_coro::executor,
                      execute_detached(job.input, job.mechanism, std::move(*slot)), net::detached);
        auto response = json_text_response(202, to_json_text(job));
        response.set(http::field::location, "/jobs/" + job.input.job_id);
        co_return response;
    }
    co_return co_await execute(job.input, job.mechanism, std::move(*slot));
}

std::optional<SubmitterService::JobSlot> SubmitterService::admit() {
    if (in_flight_.fetch_add(1) >= max_in_flight_) {
        in_flight_.fetch_sub(1);
        return std::nullopt;
    }
    return JobSlot(in_flight_);
}

Task<void> SubmitterService::execute_detached(JobInput input, Mechanism mechanism, JobSlot slot) {
    co_await execute(std::move(input), mechanism, std::move(slot));
}

Task<Response> SubmitterService::execute(JobInput input, Mechanism mechanism,
                                         JobSlot /*held until the job ends*/) {
    auto& transport = transports_[static_cast<int>(mechanism)];
    Result<WorkerResult> run = fail(ErrorCode::broker_unavailable,
                                    "the kafka mechanism is off: no kafka-bootstrap-servers set");
    if (transport) {
        run = co_await transport->run(
            input, std::chrono::steady_clock::now() + timeouts_[static_cast<int>(mechanism)]);
    }
    std::optional<Job> finished;
    if (run) {
        finished = jobs_.finish(input.job_id, run.value().outcome, run.value().identity);
    } else if (run.error().code != ErrorCode::job_timeout) {
        finished = jobs_.finish(input.job_id, run.error(), std::nullopt);
    } else {
        finished = jobs_.find(input.job_id);  // stays pending: a late result completes it
    }
    if (!finished) {
        // Forgotten meanwhile (the table is bounded); the answer is still the worker's.
        spdlog::warn("event=job_forgotten job_id={}", input.job_id);
    }
    const Error* error =
        run ? (run.value().outcome ? nullptr : &run.value().outcome.error()) : &run.error();
    if (error) {
        spdlog::info("event=job_failed job_id={} mechanism={} code={} message=\"{}\"", input.job_id,
                     mechanism_name(mechanism), error_code_name(error->code), error->message);
        Response response;
        if (finished) {
            response = json_text_response(http_status(error->code), to_json_text(*finished, error));
        } else {
            auto body = error_json(*error);
            body["error"]["job_id"] = input.job_id;
            response = json_response(http_status(error->code), body);
        }
        add_retry_after(response, error->code);
        co_return response;
    }
    co_return json_text_response(200,
                                 finished ? to_json_text(*finished) : to_json_text(run.value()));
}

Task<Response> SubmitterService::handle_job(Request request) {
    const auto id = request.path.substr(std::string_view("/jobs/").size());
    const auto job = jobs_.find(id);
    if (!job) {
        co_return error_response(
            {ErrorCode::not_found, "no job '" + id + "' on this job_submitter instance"});
    }
    co_return json_text_response(200, to_json_text(*job));
}

Task<Response> SubmitterService::handle_index(Request /*request*/) {
    co_return text_response(200, std::string(kIndexPage), "text/html; charset=utf-8");
}

}  // namespace calcmesh::job_submitter
