#include <fmt/format.h>
#include <simdjson.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include "calcmesh/async_event.hpp"
#include "calcmesh/bench/target.hpp"
#include "calcmesh/blocking_http.hpp"
#include "calcmesh/http.hpp"
#include "calcmesh/http_client.hpp"
#include "calcmesh/kafka.hpp"
#include "calcmesh/metrics.hpp"

namespace calcmesh::bench {

CallResult CallResult::error(std::string label, std::string detail) {
    return {Kind::error, std::move(label), std::move(detail)};
}

CallResult CallResult::wrong(std::string label, std::string detail) {
    return {Kind::wrong, std::move(label), std::move(detail)};
}

Result<nlohmann::json> Target::finish(std::uint64_t /*successful*/) {
    return nlohmann::json::object();
}

Outcome expected_outcome(Operation operation, std::int64_t a, std::int64_t b) {
    switch (operation) {
        case Operation::addition:
            return {a + b, std::nullopt};
        case Operation::subtraction:
            return {a - b, std::nullopt};
        case Operation::multiplication:
            return {a * b, std::nullopt};
        case Operation::division:
            return {a / b, a % b};
    }
    return {};
}

JobInput job_inputs(std::uint64_t sequence,
                    const std::vector<std::pair<Operation, unsigned>>& mix) {
    // splitmix64: cheap, and every sequence number gives other operands.
    std::uint64_t z = sequence + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    unsigned total = 0;
    for (const auto& [operation, weight] : mix) {
        total += weight;
    }
    auto slot = static_cast<unsigned>(sequence % total);
    JobInput input;
    for (const auto& [operation, weight] : mix) {
        if (slot < weight) {
            input.operation = operation;
            break;
        }
        slot -= weight;
    }
    constexpr std::int64_t kRange = 1'000'000'000;
    input.a = static_cast<std::int64_t>(z % (2 * kRange + 1)) - kRange;
    input.b = static_cast<std::int64_t>((z >> 32) % (2 * kRange + 1)) - kRange;
    if (input.b == 0) {
        input.b = 7;
    }
    return input;
}

std::optional<double> prometheus_value(std::string_view text, std::string_view name) {
    std::size_t at = 0;
    while (at < text.size()) {
        const auto end = std::min(text.find('\n', at), text.size());
        const auto line = text.substr(at, end - at);
        if (line.size() > name.size() && line.substr(0, name.size()) == name &&
            line[name.size()] == ' ') {
            try {
                return std::stod(std::string(line.substr(name.size() + 1)));
            } catch (const std::exception&) {
                return std::nullopt;
            }
        }
        at = end + 1;
    }
    return std::nullopt;
}

namespace {

/// A run-unique prefix, so that ids of this run never collide with a previous run's.
std::string run_nonce() {
    std::random_device device;
    return fmt::format("{:x}{:08x}", ::getpid(), device());
}

CallResult transport_error(const Error& error) {
    return CallResult::error(error.code == ErrorCode::upstream_timeout ? "timeout" : "connection",
                             error.message);
}

/// An answer with an unexpected status: "http_503 upstream_unavailable" and the message.
CallResult status_error(const ClientResponse& response) {
    const auto body = nlohmann::json::parse(response.body, nullptr, false);
    std::string label = "http_" + std::to_string(response.status);
    std::string detail = response.body.substr(0, 300);
    if (body.is_object() && body.contains("error") && body["error"].is_object()) {
        label += " " + body["error"].value("code", "?");
        detail = body["error"].value("message", detail);
    }
    return CallResult::error(std::move(label), std::move(detail));
}

Result<Url> base_url(const std::string& text, const char* what) {
    auto url = parse_url(text);
    if (!url) {
        return fail(ErrorCode::invalid_field, std::string(what) + ": " + url.error().message,
                    "url");
    }
    return url;
}

// ---- submit ------------------------------------------------------------------------------

/// Checks a `/submit` answer of 200 against the job that was asked for.
CallResult check_job(const ClientResponse& response, const JobInput& input, Mechanism mechanism) {
    // simdjson validates the whole answer as nlohmann does, in a tenth of the instructions: the
    // check runs once per job on the machine being measured.
    thread_local simdjson::dom::parser parser;
    simdjson::dom::object job;
    if (parser.parse(response.body).get_object().get(job) != simdjson::SUCCESS) {
        return CallResult::wrong("malformed_answer",
                                 "not a JSON object: " + response.body.substr(0, 200));
    }
    const auto expected = expected_outcome(input.operation, input.a, input.b);
    const auto is_int = [&](const char* name, std::int64_t value) {
        std::int64_t found = 0;
        return job[name].get_int64().get(found) == simdjson::SUCCESS && found == value;
    };
    const auto is_text = [&](const char* name, std::string_view value) {
        std::string_view found;
        return job[name].get_string().get(found) == simdjson::SUCCESS && found == value;
    };
    const auto contains = [&](const char* name) {
        return job[name].error() != simdjson::NO_SUCH_FIELD;
    };
    const auto operation = operation_name(input.operation);
    if (!is_text("operation", operation) || !is_int("a", input.a) || !is_int("b", input.b) ||
        !is_text("mechanism", mechanism_name(mechanism)) || !is_text("status", "completed") ||
        !is_text("worker", std::string(operation) + "_worker")) {
        return CallResult::wrong(
            "wrong_job", fmt::format("asked {} {} {} over {}, got {}", operation, input.a, input.b,
                                     mechanism_name(mechanism), response.body));
    }
    if (!is_int("result", expected.result) ||
        (expected.remainder && !is_int("remainder", *expected.remainder)) ||
        (!expected.remainder && contains("remainder"))) {
        return CallResult::wrong(
            "wrong_result",
            fmt::format("{} {} {} should give {}{}, got {}", operation, input.a, input.b,
                        expected.result,
                        expected.remainder ? fmt::format(" remainder {}", *expected.remainder) : "",
                        response.body));
    }
    return CallResult::ok();
}

class SubmitClient final : public TargetClient {
  public:
    SubmitClient(net::any_io_executor executor, unsigned max_connections,
                 const TargetOptions& options, Url url)
        : client_(std::move(executor), 1, 4096, max_connections),
          options_(options),
          url_(std::move(url)) {}

    Task<CallResult> call(std::uint64_t sequence) override {
        const auto input = job_inputs(sequence, options_.mix);
        auto body = fmt::format(R"({{"operation":"{}","a":{},"b":{},"mechanism":"{}"}})",
                                operation_name(input.operation), input.a, input.b,
                                mechanism_name(options_.mechanism));
        auto response =
            co_await client_.send(http::verb::post, url_, "/submit", std::move(body),
                                  "application/json", options_.timeout, "job_submitter");
        if (!response) {
            co_return transport_error(response.error());
        }
        if (response.value().status != 200) {
            co_return status_error(response.value());
        }
        co_return check_job(response.value(), input, options_.mechanism);
    }

  private:
    HttpClient client_;
    const TargetOptions& options_;
    Url url_;
};

/// Reads log_collector's count of stored records.
Result<double> stored_records(const std::string& collector) {
    auto response =
        blocking_http(http::verb::get, collector + "/metrics", {}, {}, std::chrono::seconds(5));
    if (!response || response.value().status != 200) {
        return fail(ErrorCode::upstream_unavailable,
                    "cannot read " + collector + "/metrics: " +
                        (response ? "HTTP " + std::to_string(response.value().status)
                                  : response.error().message));
    }
    const auto value = prometheus_value(response.value().body, "calcmesh_log_records_stored_total");
    if (!value) {
        return fail(
            ErrorCode::upstream_bad_response,
            collector +
                "/metrics has no calcmesh_log_records_stored_total: is it a log_collector?");
    }
    return *value;
}

class SubmitTarget final : public Target {
  public:
    SubmitTarget(TargetOptions options, Url url)
        : options_(std::move(options)), url_(std::move(url)) {}

    std::string describe() const override {
        std::string mix;
        for (const auto& [operation, weight] : options_.mix) {
            mix +=
                fmt::format("{}{}={}", mix.empty() ? "" : ",", operation_name(operation), weight);
        }
        return fmt::format("POST {}/submit mechanism={} mix={}{}", url_.to_string(),
                           mechanism_name(options_.mechanism), mix,
                           options_.log_collector_url.empty() ? "" : " (log records checked)");
    }

    nlohmann::json to_json() const override {
        nlohmann::json mix = nlohmann::json::object();
        for (const auto& [operation, weight] : options_.mix) {
            mix[std::string(operation_name(operation))] = weight;
        }
        return {{"kind", "submit"},
                {"url", url_.to_string() + "/submit"},
                {"mechanism", mechanism_name(options_.mechanism)},
                {"mix", mix},
                {"log_collector", options_.log_collector_url}};
    }

    std::unique_ptr<TargetClient> client(net::any_io_executor executor,
                                         unsigned max_connections) override {
        return std::make_unique<SubmitClient>(std::move(executor), max_connections, options_, url_);
    }

    Result<void> prepare() override {
        if (options_.log_collector_url.empty()) {
            return boost::outcome_v2::success();
        }
        auto stored = stored_records(options_.log_collector_url);
        if (!stored) {
            return stored.error();
        }
        stored_before_ = stored.value();
        return boost::outcome_v2::success();
    }

    Result<nlohmann::json> finish(std::uint64_t successful) override {
        if (options_.log_collector_url.empty()) {
            return nlohmann::json::object();
        }
        // Workers ship log records in the background: wait for the last ones to be stored.
        const auto started = std::chrono::steady_clock::now();
        double stored = 0;
        for (;;) {
            auto now_stored = stored_records(options_.log_collector_url);
            if (!now_stored) {
                return now_stored.error();
            }
            stored = now_stored.value() - stored_before_;
            const auto waited = std::chrono::steady_clock::now() - started;
            if (stored >= static_cast<double>(successful) || waited > options_.log_wait) {
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        const auto waited_ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
                .count();
        if (stored < static_cast<double>(successful)) {
            return fail(ErrorCode::storage_failure,
                        fmt::format("only {} of the {} successful jobs have a stored log record "
                                    "after {:.0f} ms",
                                    stored, successful, waited_ms));
        }
        return nlohmann::json{{"log_records_expected", successful},
                              {"log_records_stored", stored},
                              {"log_records_wait_ms", waited_ms}};
    }

  private:
    TargetOptions options_;
    Url url_;
    double stored_before_ = 0;
};

// ---- url ---------------------------------------------------------------------------------

class UrlClient final : public TargetClient {
  public:
    UrlClient(net::any_io_executor executor, unsigned max_connections, const TargetOptions& options,
              Url url)
        : client_(std::move(executor), 1, 4096, max_connections),
          options_(options),
          url_(std::move(url)) {}

    Task<CallResult> call(std::uint64_t /*sequence*/) override {
        auto response =
            co_await client_.send(http::verb::get, url_, url_.base_path.empty() ? "/" : "", {}, {},
                                  options_.timeout, url_.host_port());
        if (!response) {
            co_return transport_error(response.error());
        }
        if (response.value().status != options_.expect_status) {
            co_return status_error(response.value());
        }
        if (!options_.expect_body.empty() &&
            response.value().body.find(options_.expect_body) == std::string::npos) {
            co_return CallResult::wrong("unexpected_body",
                                        "the body lacks '" + options_.expect_body +
                                            "': " + response.value().body.substr(0, 200));
        }
        co_return CallResult::ok();
    }

  private:
    HttpClient client_;
    const TargetOptions& options_;
    Url url_;
};

class UrlTarget final : public Target {
  public:
    UrlTarget(TargetOptions options, Url url)
        : options_(std::move(options)), url_(std::move(url)) {}
    std::string describe() const override {
        return fmt::format(
            "GET {} expecting {}{}", options_.url, options_.expect_status,
            options_.expect_body.empty() ? "" : " and '" + options_.expect_body + "'");
    }
    nlohmann::json to_json() const override {
        return {{"kind", "url"},
                {"url", options_.url},
                {"expect_status", options_.expect_status},
                {"expect_body", options_.expect_body}};
    }
    std::unique_ptr<TargetClient> client(net::any_io_executor executor,
                                         unsigned max_connections) override {
        return std::make_unique<UrlClient>(std::move(executor), max_connections, options_, url_);
    }

  private:
    TargetOptions options_;
    Url url_;
};

// ---- save-log ----------------------------------------------------------------------------

class SaveLogClient final : public TargetClient {
  public:
    SaveLogClient(net::any_io_executor executor, unsigned max_connections,
                  const TargetOptions& options, Url url, const std::string& nonce)
        : client_(std::move(executor), 1, 4096, max_connections),
          options_(options),
          url_(std::move(url)),
          nonce_(nonce) {}

    Task<CallResult> call(std::uint64_t sequence) override {
        // Records like the workers send (complete: id and times), each with an id of its own
        // so that none is a duplicate; several per request are a JSON array, as a worker's
        // batch is.
        const auto count = options_.records_per_request;
        const auto now = format_time(std::chrono::system_clock::now());
        std::string body = count > 1 ? "[" : "";
        for (unsigned i = 0; i < count; ++i) {
            const auto number = sequence * count + i;
            const auto input = job_inputs(number, {{Operation::addition, 1}});
            fmt::format_to(
                std::back_inserter(body),
                R"({5}{{"record_id":"b-{0}-{1}","job_id":"bench-{0}-{1}","operation":"addition",)"
                R"("a":{2},"b":{3},"result":{4},"mechanism":"http","worker":"addition_worker",)"
                R"("instance":"calcmesh-bench","cluster":"bench","node":"bench",)"
                R"("received_at":"{6}","completed_at":"{6}"}})",
                nonce_, number, input.a, input.b, input.a + input.b, i > 0 ? "," : "", now);
        }
        if (count > 1) {
            body += ']';
        }
        auto response =
            co_await client_.send(http::verb::post, url_, "/save_log", std::move(body),
                                  "application/json", options_.timeout, "log_collector");
        if (!response) {
            co_return transport_error(response.error());
        }
        if (response.value().status != 201) {
            co_return status_error(response.value());
        }
        const auto answer = nlohmann::json::parse(response.value().body, nullptr, false);
        if (!answer.is_object() || answer.value("stored", -1) != static_cast<int>(count) ||
            answer.value("duplicates", -1) != 0) {
            co_return CallResult::wrong("wrong_ack",
                                        fmt::format("expected {{\"stored\":{},"
                                                    "\"duplicates\":0}}, got {}",
                                                    count, response.value().body.substr(0, 200)));
        }
        co_return CallResult::ok();
    }

  private:
    HttpClient client_;
    const TargetOptions& options_;
    Url url_;
    const std::string& nonce_;
};

class SaveLogTarget final : public Target {
  public:
    SaveLogTarget(TargetOptions options, Url url)
        : options_(std::move(options)), url_(std::move(url)), nonce_(run_nonce()) {}
    std::string describe() const override {
        return fmt::format("POST {}/save_log, {} record{} per request", url_.to_string(),
                           options_.records_per_request,
                           options_.records_per_request == 1 ? "" : "s");
    }
    nlohmann::json to_json() const override {
        return {{"kind", "save-log"},
                {"url", url_.to_string() + "/save_log"},
                {"records_per_request", options_.records_per_request}};
    }
    std::unique_ptr<TargetClient> client(net::any_io_executor executor,
                                         unsigned max_connections) override {
        return std::make_unique<SaveLogClient>(std::move(executor), max_connections, options_, url_,
                                               nonce_);
    }

  private:
    TargetOptions options_;
    Url url_;
    std::string nonce_;
};

// ---- kafka-trip ----------------------------------------------------------------------------

/// One produce→consume trip through the broker, with the services' own producer and consumer
/// (same client settings): the floor under a Kafka job, which needs two such trips. With more
/// than one pass, the consumer's thread sends each message on as soon as it arrives, the way a
/// worker answers a request, and the trip ends when the last pass is consumed.
class KafkaTripTarget final : public Target {
  public:
    using Waiter = AsyncEvent<Result<std::string>>;

    explicit KafkaTripTarget(TargetOptions options)
        : options_(std::move(options)), nonce_(run_nonce()) {}
    ~KafkaTripTarget() override {
        if (consumer_) {
            consumer_->stop();
        }
    }

    std::string describe() const override {
        return fmt::format("Kafka produce→consume trip through {} on topic {}, {} pass{}",
                           options_.kafka_bootstrap_servers, options_.trip_topic, options_.passes,
                           options_.passes == 1 ? "" : "es");
    }
    nlohmann::json to_json() const override {
        return {{"kind", "kafka-trip"},
                {"bootstrap_servers", options_.kafka_bootstrap_servers},
                {"topic", options_.trip_topic},
                {"partitions", options_.partitions},
                {"passes", options_.passes}};
    }

    Result<void> prepare() override {
        auto created = create_topics(options_.kafka_bootstrap_servers, {options_.trip_topic},
                                     options_.partitions, std::chrono::seconds(15));
        if (!created) {
            return created.error();
        }
        try {
            producer_ = std::make_unique<KafkaProducer>(options_.kafka_bootstrap_servers,
                                                        "calcmesh-bench-" + nonce_, metrics_);
            consumer_ = std::make_unique<KafkaConsumer>(
                KafkaConsumer::Options{options_.kafka_bootstrap_servers,
                                       "calcmesh-bench-" + nonce_,
                                       "calcmesh-bench-" + nonce_,
                                       {options_.trip_topic},
                                       KafkaConsumer::Mode::tail},
                [this](const KafkaMessage& message) { arrived(message); });
        } catch (const std::exception& error) {
            return fail(ErrorCode::broker_unavailable, error.what());
        }
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (!(consumer_->ready() && producer_->broker_reachable())) {
            if (std::chrono::steady_clock::now() > deadline) {
                return fail(ErrorCode::broker_unavailable,
                            "the Kafka broker at " + options_.kafka_bootstrap_servers +
                                " did not serve topic " + options_.trip_topic + " within 30 s");
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return boost::outcome_v2::success();
    }

    std::unique_ptr<TargetClient> client(net::any_io_executor executor,
                                         unsigned max_connections) override;

    /// Registers a trip and sends its message for the first pass.
    void send(const std::string& key, const std::string& value, std::shared_ptr<Waiter> waiter) {
        {
            std::lock_guard lock(mutex_);
            pending_[key] = std::move(waiter);
        }
        send_pass(key, value, options_.passes);
    }
    std::shared_ptr<Waiter> claim(const std::string& key) {
        std::lock_guard lock(mutex_);
        const auto it = pending_.find(key);
        if (it == pending_.end()) {
            return nullptr;
        }
        auto waiter = std::move(it->second);
        pending_.erase(it);
        return waiter;
    }
    const TargetOptions& options() const { return options_; }
    const std::string& nonce() const { return nonce_; }

  private:
    /// The message key carries the passes still to go: "<passes>/<trip key>".
    void send_pass(const std::string& key, const std::string& value, unsigned passes_left) {
        producer_->produce(options_.trip_topic, fmt::format("{}/{}", passes_left, key), value,
                           [this, key](Result<void> delivered) {
                               if (!delivered) {
                                   if (auto failed = claim(key)) {
                                       failed->deliver(delivered.error());
                                   }
                               }
                           });
    }

    void arrived(const KafkaMessage& message) {
        const auto slash = message.key.find('/');
        if (slash == std::string::npos) {
            return;  // not a message of this bench
        }
        const auto passes_left = std::strtoul(message.key.c_str(), nullptr, 10);
        const auto key = message.key.substr(slash + 1);
        if (passes_left <= 1) {
            if (auto waiter = claim(key)) {
                waiter->deliver(message.value);
            }
            return;
        }
        bool ours = false;  // another bench's trips on the same topic are not sent on
        {
            std::lock_guard lock(mutex_);
            ours = pending_.contains(key);
        }
        if (ours) {
            send_pass(key, message.value, passes_left - 1);
        }
    }

    TargetOptions options_;
    std::string nonce_;
    MetricsRegistry metrics_;
    std::mutex mutex_;
    std::unordered_map<std::string, std::shared_ptr<Waiter>> pending_;
    std::unique_ptr<KafkaProducer> producer_;
    std::unique_ptr<KafkaConsumer> consumer_;
};

class KafkaTripClient final : public TargetClient {
  public:
    KafkaTripClient(net::any_io_executor executor, KafkaTripTarget& trip)
        : executor_(std::move(executor)), trip_(trip) {}

    Task<CallResult> call(std::uint64_t sequence) override {
        const auto key = fmt::format("trip-{}-{}", trip_.nonce(), sequence);
        // About the size of a job request message.
        const auto value = fmt::format(
            R"({{"job_id":"{}","operation":"addition","a":{},"b":{},"reply_to":"calcmesh-bench"}})",
            key, sequence, sequence + 1);
        auto waiter = std::make_shared<KafkaTripTarget::Waiter>(executor_);
        trip_.send(key, value, waiter);
        auto arrived =
            co_await waiter->wait_until(std::chrono::steady_clock::now() + trip_.options().timeout);
        if (!arrived) {
            trip_.claim(key);
            co_return CallResult::error("timeout", "message " + key + " did not come back in time");
        }
        if (!*arrived) {
            co_return CallResult::error("produce_failed", arrived->error().message);
        }
        if (arrived->value() != value) {
            co_return CallResult::wrong("wrong_message",
                                        "sent " + value + ", got " + arrived->value());
        }
        co_return CallResult::ok();
    }

  private:
    net::any_io_executor executor_;
    KafkaTripTarget& trip_;
};

std::unique_ptr<TargetClient> KafkaTripTarget::client(net::any_io_executor executor,
                                                      unsigned /*max_connections*/) {
    return std::make_unique<KafkaTripClient>(std::move(executor), *this);
}

}  // namespace

Result<std::unique_ptr<Target>> make_target(const TargetOptions& options) {
    if (options.kind == "kafka-trip") {
        if (options.kafka_bootstrap_servers.empty()) {
            return fail(ErrorCode::invalid_field, "kafka-trip needs the Kafka bootstrap servers",
                        "kafka-bootstrap-servers");
        }
        return std::unique_ptr<Target>(std::make_unique<KafkaTripTarget>(options));
    }
    if (options.kind != "submit" && options.kind != "url" && options.kind != "save-log") {
        return fail(
            ErrorCode::invalid_field,
            "unknown target '" + options.kind + "': expected submit, url, save-log or kafka-trip",
            "target");
    }
    auto url = base_url(options.url, "url");
    if (!url) {
        return url.error();
    }
    if (options.kind == "url") {
        return std::unique_ptr<Target>(std::make_unique<UrlTarget>(options, url.value()));
    }
    if (options.kind == "save-log") {
        return std::unique_ptr<Target>(std::make_unique<SaveLogTarget>(options, url.value()));
    }
    if (options.mix.empty()) {
        return fail(ErrorCode::invalid_field, "the operation mix is empty", "mix");
    }
    for (const auto& [operation, weight] : options.mix) {
        if (weight == 0) {
            return fail(ErrorCode::invalid_field,
                        "the weight of " + std::string(operation_name(operation)) + " is 0", "mix");
        }
    }
    if (!options.log_collector_url.empty()) {
        if (auto collector = base_url(options.log_collector_url, "log-collector"); !collector) {
            return collector.error();
        }
    }
    return std::unique_ptr<Target>(std::make_unique<SubmitTarget>(options, url.value()));
}

}  // namespace calcmesh::bench
