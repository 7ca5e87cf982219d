#include <iostream>
#include <nlohmann/json.hpp>

#include "calcmesh/blocking_http.hpp"
#include "calcmesh/http.hpp"
#include "commands.hpp"

namespace calcmesh::tools {

namespace {

struct SubmitOptions {
    std::string url = "http://127.0.0.1:8080";
    std::string operation;
    std::string a;
    std::string b;
    std::string mechanism = "http";
    bool json = false;
};

struct LogsOptions {
    std::string url = "http://127.0.0.1:8082";
    std::string job_id;
    std::string operation;
    std::string worker;
    unsigned limit = 0;
    bool json = false;
};

/// Prints the error of a failed call and returns the exit code.
int report(const std::string& what, const Result<ClientResponse>& response) {
    if (!response) {
        std::cerr << what << ": " << response.error().message << '\n';
        return 1;
    }
    if (const auto error = read_error_body(response.value().body)) {
        std::cerr << what << ": HTTP " << response.value().status << " " << error->code << ": "
                  << error->message << '\n';
    } else {
        std::cerr << what << ": HTTP " << response.value().status << ": " << response.value().body
                  << '\n';
    }
    return 1;
}

int run_submit(const SubmitOptions& options) {
    // a and b go into the JSON as typed, so the service judges them (range, integer syntax).
    const auto a = nlohmann::json::parse(options.a, nullptr, false);
    const auto b = nlohmann::json::parse(options.b, nullptr, false);
    const nlohmann::json body = {{"operation", options.operation},
                                 {"a", a.is_discarded() ? nlohmann::json(options.a) : a},
                                 {"b", b.is_discarded() ? nlohmann::json(options.b) : b},
                                 {"mechanism", options.mechanism}};
    auto response = blocking_http(http::verb::post, options.url + "/submit", body.dump(),
                                  "application/json", std::chrono::seconds(30));
    if (!response || response.value().status != 200) {
        return report("submit", response);
    }
    if (options.json) {
        std::cout << response.value().body;
        return 0;
    }
    const auto job = nlohmann::json::parse(response.value().body);
    std::cout << job["operation"].get<std::string>() << " " << job["a"] << " " << job["b"] << " = "
              << job["result"];
    if (job.contains("remainder")) {
        std::cout << " remainder " << job["remainder"];
    }
    std::cout << "  (job " << job["job_id"].get<std::string>() << ", "
              << job["mechanism"].get<std::string>() << ", " << job.value("worker", "?") << " in "
              << job.value("worker_cluster", "?") << ", " << job.value("elapsed_ms", 0.0)
              << " ms)\n";
    return 0;
}

int run_logs(const LogsOptions& options) {
    std::string query;
    for (const auto& [name, value] :
         {std::pair{"job_id", options.job_id}, std::pair{"operation", options.operation},
          std::pair{"worker", options.worker}}) {
        if (!value.empty()) {
            query += std::string(query.empty() ? "?" : "&") + name + "=" + url_encode(value);
        }
    }
    if (options.limit > 0) {
        query += std::string(query.empty() ? "?" : "&") + "limit=" + std::to_string(options.limit);
    }
    auto response = blocking_http(http::verb::get, options.url + "/logs" + query, {}, {},
                                  std::chrono::seconds(30));
    if (!response || response.value().status != 200) {
        return report("logs", response);
    }
    if (options.json) {
        std::cout << response.value().body;
        return 0;
    }
    for (const auto& record : nlohmann::json::parse(response.value().body)) {
        std::cout << record.value("completed_at", "") << "  " << record.value("job_id", "") << "  "
                  << record.value("operation", "") << " " << record["a"] << " " << record["b"]
                  << " = ";
        if (record.contains("error")) {
            std::cout << "error " << record["error"].value("code", "");
        } else {
            std::cout << record["result"];
            if (record.contains("remainder")) {
                std::cout << " remainder " << record["remainder"];
            }
        }
        std::cout << "  via " << record.value("mechanism", "") << " by "
                  << record.value("worker", "") << " (" << record.value("cluster", "") << "/"
                  << record.value("node", "") << ")\n";
    }
    return 0;
}

}  // namespace

void add_client_commands(CLI::App& app) {
    auto submit = std::make_shared<SubmitOptions>();
    auto* submit_command = add_command(app, "submit", "Submit one job to a running job_submitter",
                                       [submit] { return run_submit(*submit); });
    submit_command
        ->add_option("operation", submit->operation,
                     "addition, subtraction, multiplication, division (or add, sub, mul, div)")
        ->required();
    submit_command->add_option("a", submit->a, "First integer")->required();
    submit_command->add_option("b", submit->b, "Second integer")->required();
    submit_command->add_option("--via", submit->mechanism, "http or kafka")->capture_default_str();
    submit_command->add_option("--url", submit->url, "job_submitter base URL")
        ->capture_default_str();
    submit_command->add_flag("--json", submit->json, "Print the job as JSON");

    auto logs = std::make_shared<LogsOptions>();
    auto* logs_command = add_command(app, "logs", "Show the records kept by log_collector",
                                     [logs] { return run_logs(*logs); });
    logs_command->add_option("--job", logs->job_id, "Only this job id");
    logs_command->add_option("--operation", logs->operation, "Only this operation");
    logs_command->add_option("--worker", logs->worker, "Only this worker, e.g. division_worker");
    logs_command->add_option("--limit", logs->limit, "At most this many records");
    logs_command->add_option("--url", logs->url, "log_collector base URL")->capture_default_str();
    logs_command->add_flag("--json", logs->json, "Print the records as JSON");
}

}  // namespace calcmesh::tools
