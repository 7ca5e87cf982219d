#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "calcmesh/arithmetic.hpp"
#include "calcmesh/error.hpp"
#include "calcmesh/message_schema.hpp"

namespace calcmesh {

/// How job_submitter reaches a worker.
enum class Mechanism { http, kafka };

std::string_view mechanism_name(Mechanism mechanism);
Result<Mechanism> parse_mechanism(std::string_view text);

/// Who computed something: sent with every result and log record.
struct WorkerIdentity {
    std::string worker;    ///< e.g. "division_worker"
    std::string instance;  ///< process or pod name
    std::string cluster;
    std::string node;
};

/// The operands of a job.
struct JobInput {
    std::string job_id;
    Operation operation = Operation::addition;
    std::int64_t a = 0;
    std::int64_t b = 0;
};

/// A worker's answer to one job: the outcome or the domain error, and who answered.
/// It is the body of `GET /compute` and the value of a message on the `results` topic.
struct WorkerResult {
    JobInput input;
    Result<Outcome> outcome = Outcome{};
    WorkerIdentity identity;
};

/// A result on the `results` topic: a worker result and the job_submitter instance it is for.
struct ResultMessage {
    WorkerResult result;
    std::string reply_to;
};

/// A job request on a `<operation>_requests` topic.
struct JobRequestMessage {
    JobInput input;
    std::string reply_to;  ///< instance id of the job_submitter that awaits the result
};

/// The longest record id: room for a job's record id (a job id of up to 64 characters and
/// its operation). Both readers of a record enforce it.
inline constexpr std::size_t kMaxRecordIdLength = 128;

/// One record kept by log_collector about a computation.
struct LogRecord {
    std::string record_id;  ///< unique per record; a resent record is stored once
    JobInput input;
    Result<Outcome> outcome = Outcome{};
    Mechanism mechanism = Mechanism::http;
    WorkerIdentity identity;
    std::string received_at;   ///< RFC 3339, UTC
    std::string completed_at;  ///< RFC 3339, UTC
};

/// A fresh random job or record id: 16 lowercase hex digits after `prefix`.
std::string new_id(std::string_view prefix);

/// The record id of a job computed by a worker of its operation, e.g. "j-1c0e...@division":
/// every delivery of the job gives the same id, so log_collector stores its record once.
std::string job_record_id(const JobInput& input);

/// Job ids are 1 to 64 characters of [A-Za-z0-9._:-].
Result<std::string> validate_job_id(std::string_view text);

/// The time as RFC 3339 in UTC with milliseconds, e.g. "2026-11-28T15:04:05.123Z".
std::string format_time(std::chrono::system_clock::time_point time);

/// Each message as one line of compact JSON, keys in alphabetical order: the same text as
/// nlohmann's dump of the message's JSON object.
std::string to_json_text(const WorkerResult& result);
std::string to_json_text(const JobRequestMessage& request);
std::string to_json_text(const ResultMessage& message);
/// The record as log_collector stores it, in the same form.
std::string log_line(const LogRecord& record);
/// Whether a log record may hold a member of that name.
bool is_log_record_member(std::string_view name);

/// Parsers of the wire formats above. They check every field and name the first bad one.
/// Each message's members are defined once, in common/src/messages.hpp.
Result<JobInput> job_input_from_json(const nlohmann::json& json);
Result<WorkerResult> worker_result_from_json(const nlohmann::json& json);
Result<JobRequestMessage> job_request_from_json(const nlohmann::json& json);
/// Reads a result message. An error result needs no valid operands: a worker that cannot
/// read a request still answers with its job id, so the job fails at once instead of timing
/// out.
Result<ResultMessage> result_message_from_json(const nlohmann::json& json);
Result<LogRecord> log_record_from_json(const nlohmann::json& json);

/// Fast readers of the messages as the services write them: simdjson reads a message that has
/// every member it needs, each of the right type, and no error outcome. They give nothing for
/// anything else, which the parsers above then read and explain; a message they accept reads
/// the same both ways.
std::optional<WorkerResult> well_formed_worker_result(std::string_view text);
std::optional<ResultMessage> well_formed_result_message(std::string_view text);
std::optional<JobRequestMessage> well_formed_job_request(std::string_view text);

/// Reads a message's text: with the fast reader if it can, else with the parser above.
Result<WorkerResult> read_worker_result(std::string_view text);
Result<ResultMessage> read_result_message(std::string_view text);
Result<JobRequestMessage> read_job_request(std::string_view text);
/// The records of a `/save_log` body: one record or an array of them, each complete (with its
/// record_id and both timestamps, as workers send them).
std::optional<std::vector<LogRecord>> well_formed_log_records(std::string_view text);

}  // namespace calcmesh
