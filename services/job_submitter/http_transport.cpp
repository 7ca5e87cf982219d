#include "http_transport.hpp"

#include "calcmesh/worker_urls.hpp"

namespace calcmesh::job_submitter {

HttpTransport::HttpTransport(Runtime& runtime, std::array<Url, 4> workers)
    : runtime_(runtime), workers_(std::move(workers)) {}

Task<Result<WorkerResult>> HttpTransport::run(JobInput input,
                                              std::chrono::steady_clock::time_point deadline) {
    const auto name = worker_name(input.operation);
    const auto target = "/compute?a=" + std::to_string(input.a) + "&b=" + std::to_string(input.b) +
                        "&job_id=" + url_encode(input.job_id);
    const auto timeout = std::max(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      deadline - std::chrono::steady_clock::now()),
                                  std::chrono::milliseconds(1));
    auto response = co_await runtime_.client().send(
        http::verb::get, workers_[static_cast<std::size_t>(input.operation)], target, {}, {},
        timeout, name);
    if (!response) {
        co_return response.error();
    }
    const auto status = response.value().status;
    // 200 carries a result, 400 a domain error the worker computed; both have the full form.
    if (status == 200 || status == 400) {
        auto result = read_worker_result(response.value().body);
        if (result && result.value().input.job_id == input.job_id &&
            result.value().input.operation == input.operation) {
            co_return result;
        }
    }
    const auto error = read_error_body(response.value().body);
    if (status == 503 && error) {
        // The worker refused the job before doing it (too much work, or too many log records
        // not yet taken by log_collector): the client may retry, as with our own refusals.
        const auto code = parse_error_code(error->code);
        if (code == ErrorCode::overloaded) {
            co_return fail(ErrorCode::overloaded, name + " is overloaded; retry shortly");
        }
        if (code == ErrorCode::log_backlog) {
            co_return fail(ErrorCode::log_backlog,
                           name + " holds too many unsent log records; retry shortly");
        }
    }
    std::string detail = "HTTP " + std::to_string(status);
    if (error && !error->message.empty()) {
        detail += ": " + error->message;
    }
    co_return fail(ErrorCode::upstream_bad_response,
                   name + " answered with an unusable response (" + detail + ")");
}

}  // namespace calcmesh::job_submitter
