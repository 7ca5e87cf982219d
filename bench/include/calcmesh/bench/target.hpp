#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "calcmesh/arithmetic.hpp"
#include "calcmesh/asio.hpp"
#include "calcmesh/error.hpp"
#include "calcmesh/job.hpp"

namespace calcmesh::bench {

/// How one request of a benchmark ended. Only `ok` counts as throughput; a `wrong` answer
/// (the service claimed success but the content is not right for the inputs) makes the whole
/// run unreportable.
struct CallResult {
    enum class Kind { ok, wrong, error };
    Kind kind = Kind::ok;
    std::string label;   ///< error or wrong-answer kind, e.g. "http_503 upstream_unavailable"
    std::string detail;  ///< what exactly was wrong, for the first occurrence of each label

    static CallResult ok() { return {}; }
    static CallResult error(std::string label, std::string detail = {});
    static CallResult wrong(std::string label, std::string detail);
};

/// One client thread's connection to a target. Used from one io_context only.
class TargetClient {
  public:
    virtual ~TargetClient() = default;
    /// Sends request number `sequence` (unique within the run) and checks the answer.
    /// Never throws: every failure is a CallResult.
    virtual Task<CallResult> call(std::uint64_t sequence) = 0;
};

/// What a benchmark loads: `/submit`, any URL, `/save_log`, or a Kafka produce→consume trip.
class Target {
  public:
    virtual ~Target() = default;
    /// One line for people, e.g. "POST http://127.0.0.1:8080/submit mechanism=http".
    virtual std::string describe() const = 0;
    /// The target's settings, for the JSON report.
    virtual nlohmann::json to_json() const = 0;
    /// A client for the io_context of `executor`; called once per client thread. An HTTP
    /// client opens at most `max_connections` (0: one per request in flight); past them a
    /// request waits in line on one.
    virtual std::unique_ptr<TargetClient> client(net::any_io_executor executor,
                                                 unsigned max_connections) = 0;
    /// Runs once before any request (e.g. to note the log records stored so far).
    virtual Result<void> prepare() { return boost::outcome_v2::success(); }
    /// Runs once after the run, given the number of successful requests (warm-up included);
    /// checks what cannot be checked per response (e.g. that every job's log record was
    /// stored) and returns what it found. A failure makes the run unreportable.
    virtual Result<nlohmann::json> finish(std::uint64_t successful);
};

/// Settings of every kind of target; each kind reads the fields it needs.
struct TargetOptions {
    std::string kind = "submit";  ///< submit, url, save-log or kafka-trip
    /// submit: job_submitter's base URL; url: the full URL; save-log: log_collector's base URL.
    std::string url = "http://127.0.0.1:8080";
    Mechanism mechanism = Mechanism::http;
    /// submit: operations and their weights; jobs cycle through them in proportion.
    std::vector<std::pair<Operation, unsigned>> mix = {{Operation::addition, 1},
                                                       {Operation::subtraction, 1},
                                                       {Operation::multiplication, 1},
                                                       {Operation::division, 1}};
    /// submit: if set, log_collector's base URL; the run then also waits until a log record of
    /// every successful job is stored (its `calcmesh_log_records_stored_total` counter).
    std::string log_collector_url;
    std::chrono::milliseconds log_wait{30'000};
    /// save-log: records in each request (more than one: a JSON array, like a worker's batch).
    unsigned records_per_request = 1;
    /// url: the status and (if not empty) a piece of the body every answer must have.
    unsigned expect_status = 200;
    std::string expect_body;
    /// kafka-trip: the broker, and the topic the trips go through (created if missing, with
    /// `partitions` like the job topics).
    std::string kafka_bootstrap_servers = "127.0.0.1:9092";
    std::string trip_topic = "bench_trips";
    int partitions = 3;
    /// kafka-trip: times a message goes through the broker before the trip ends.
    unsigned passes = 1;
    /// Deadline of one request.
    std::chrono::milliseconds timeout{10'000};
};

/// Builds a target. Fails with `invalid_field` naming the bad setting, or with
/// `broker_unavailable` when the Kafka trip cannot be set up.
Result<std::unique_ptr<Target>> make_target(const TargetOptions& options);

/// The expected outcome of a job, computed independently of the services' arithmetic.
/// Inputs come from `job_inputs`, which keeps every result within 64 bits and b non-zero.
Outcome expected_outcome(Operation operation, std::int64_t a, std::int64_t b);

/// The operation and operands of job number `sequence` for a mix: deterministic, spread over
/// the mix in proportion to the weights, operands in ±10^9.
JobInput job_inputs(std::uint64_t sequence, const std::vector<std::pair<Operation, unsigned>>& mix);

/// Reads the value of an unlabelled counter from Prometheus text; nothing if absent.
std::optional<double> prometheus_value(std::string_view text, std::string_view name);

}  // namespace calcmesh::bench
