#include "calcmesh/job.hpp"

#include <cmath>
#include <ctime>
#include <limits>
#include <random>

#include "calcmesh/json_writer.hpp"

namespace calcmesh {

std::string_view mechanism_name(Mechanism mechanism) {
    return mechanism == Mechanism::http ? "http" : "kafka";
}

Result<Mechanism> parse_mechanism(std::string_view text) {
    if (text == "http") {
        return Mechanism::http;
    }
    if (text == "kafka") {
        return Mechanism::kafka;
    }
    return fail(ErrorCode::unknown_mechanism,
                "unknown mechanism '" + std::string(text) + "': expected http or kafka",
                "mechanism");
}

std::string new_id(std::string_view prefix) {
    thread_local std::mt19937_64 generator{std::random_device{}()};
    static constexpr std::string_view kDigits = "0123456789abcdef";
    std::string id(prefix);
    std::uint64_t bits = generator();
    for (int i = 0; i < 16; ++i) {
        id.push_back(kDigits[bits & 0xf]);
        bits >>= 4;
    }
    return id;
}

std::string job_record_id(const JobInput& input) {
    return input.job_id + "@" + std::string(operation_name(input.operation));
}

Result<std::string> validate_job_id(std::string_view text) {
    bool valid = !text.empty() && text.size() <= 64;
    for (char c : text) {
        valid = valid && (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' ||
                          c == ':' || c == '-');
    }
    if (!valid) {
        return fail(ErrorCode::invalid_field,
                    "job_id must be 1 to 64 characters of letters, digits, '.', '_', ':' or '-'",
                    "job_id");
    }
    return std::string(text);
}

std::string format_time(std::chrono::system_clock::time_point time) {
    // gmtime_r and fixed-width digits (years 0 to 9999): this runs several times per job, and
    // strftime with snprintf, or fmt, cost 2,500 to 4,000 instructions a call.
    using namespace std::chrono;
    const auto since_epoch = floor<milliseconds>(time).time_since_epoch();
    const auto whole_seconds = floor<seconds>(since_epoch);
    const std::time_t seconds = whole_seconds.count();
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    std::string text = "0000-00-00T00:00:00.000Z";
    const auto put = [&text](std::size_t at, long value, std::size_t width) {
        for (std::size_t i = width; i > 0; --i, value /= 10) {
            text[at + i - 1] = static_cast<char>('0' + value % 10);
        }
    };
    put(0, utc.tm_year + 1900L, 4);
    put(5, utc.tm_mon + 1L, 2);
    put(8, utc.tm_mday, 2);
    put(11, utc.tm_hour, 2);
    put(14, utc.tm_min, 2);
    put(17, utc.tm_sec, 2);
    put(20, (since_epoch - whole_seconds).count(), 3);
    return text;
}

namespace {

Result<void> check_object(const nlohmann::json& json) {
    if (!json.is_object()) {
        return fail(ErrorCode::invalid_json, "expected a JSON object");
    }
    return boost::outcome_v2::success();
}

/// The outcome a peer reported, which may itself be a domain error.
struct ReportedOutcome {
    Result<Outcome> outcome;
};

/// Parses "result"/"remainder" or "error"; fails only when the JSON is malformed.
Result<ReportedOutcome> outcome_from_json(const nlohmann::json& json) {
    if (const auto error = json.find("error"); error != json.end()) {
        auto code =
            error->is_object() ? string_field(*error, "code") : fail(ErrorCode::invalid_field, "");
        auto message = error->is_object() ? string_field(*error, "message")
                                          : fail(ErrorCode::invalid_field, "");
        if (!message || !code) {
            return fail(ErrorCode::invalid_field,
                        "error must be an object with string fields code and message", "error");
        }
        // The field an error names, if any, travels on with it.
        const auto field = error->find("field");
        return ReportedOutcome{
            fail(parse_error_code(code.value()).value_or(ErrorCode::internal), message.value(),
                 field != error->end() && field->is_string() ? field->get<std::string>() : "")};
    }
    if (!json.contains("result")) {
        return fail(ErrorCode::missing_field, "expected 'result' or 'error'", "result");
    }
    BOOST_OUTCOME_TRY(result, integer_field(json, "result"));
    Outcome outcome{result, std::nullopt};
    if (json.contains("remainder")) {
        BOOST_OUTCOME_TRY(remainder, integer_field(json, "remainder"));
        outcome.remainder = remainder;
    }
    return ReportedOutcome{outcome};
}

Result<WorkerIdentity> identity_from_json(const nlohmann::json& json) {
    WorkerIdentity identity;
    BOOST_OUTCOME_TRY(worker, string_field(json, "worker"));
    identity.worker = worker;
    // The other identity fields are informative; a peer that omits them is still understood.
    for (auto [field, target] :
         {std::pair{"instance", &identity.instance}, std::pair{"cluster", &identity.cluster},
          std::pair{"node", &identity.node}}) {
        if (auto value = json.find(field); value != json.end() && value->is_string()) {
            *target = value->get<std::string>();
        }
    }
    return identity;
}

/// A worker result; with `operands_optional`, an error result may carry only the job id, as
/// a worker answers a request it could not read.
Result<WorkerResult> parse_worker_result(const nlohmann::json& json, bool operands_optional) {
    BOOST_OUTCOME_TRYV(check_object(json));
    BOOST_OUTCOME_TRY(reported, outcome_from_json(json));
    BOOST_OUTCOME_TRY(identity, identity_from_json(json));
    auto input = job_input_from_json(json);
    if (!input && operands_optional && !reported.outcome) {
        BOOST_OUTCOME_TRY(job_id, string_field(json, "job_id"));
        input = JobInput{job_id};
    }
    BOOST_OUTCOME_TRY(operands, std::move(input));
    return WorkerResult{operands, reported.outcome, identity};
}

/// The value of "error" in a message: the error's JSON object. Rare, so the one definition
/// of an error's JSON is used as it is.
std::string error_object_text(const Error& error) {
    return error_json(error)["error"].dump();
}

/// A worker result, and with `reply_to` the result message that carries it.
std::string worker_result_text(const WorkerResult& result, const std::string* reply_to) {
    std::string text;
    text.reserve(256);
    {
        JsonObjectWriter object(text);
        object.add("a", result.input.a);
        object.add("b", result.input.b);
        object.add("cluster", result.identity.cluster);
        if (!result.outcome) {
            object.key("error") += error_object_text(result.outcome.error());
        }
        object.add("instance", result.identity.instance);
        object.add("job_id", result.input.job_id);
        object.add("node", result.identity.node);
        object.add("operation", operation_name(result.input.operation));
        if (result.outcome && result.outcome.value().remainder) {
            object.add("remainder", *result.outcome.value().remainder);
        }
        if (reply_to) {
            object.add("reply_to", *reply_to);
        }
        if (result.outcome) {
            object.add("result", result.outcome.value().result);
        }
        object.add("worker", result.identity.worker);
    }
    return text;
}

}  // namespace

std::string to_json_text(const WorkerResult& result) {
    return worker_result_text(result, nullptr);
}

std::string to_json_text(const ResultMessage& message) {
    return worker_result_text(message.result, &message.reply_to);
}

std::string to_json_text(const JobRequestMessage& request) {
    std::string text;
    {
        JsonObjectWriter object(text);
        object.add("a", request.input.a);
        object.add("b", request.input.b);
        object.add("job_id", request.input.job_id);
        object.add("operation", operation_name(request.input.operation));
        object.add("reply_to", request.reply_to);
    }
    return text;
}

std::string log_line(const LogRecord& record) {
    std::string line;
    line.reserve(320);
    {
        JsonObjectWriter object(line);
        object.add("a", record.input.a);
        object.add("b", record.input.b);
        object.add("cluster", record.identity.cluster);
        object.add("completed_at", record.completed_at);
        if (!record.outcome) {
            object.key("error") += error_object_text(record.outcome.error());
        }
        object.add("instance", record.identity.instance);
        object.add("job_id", record.input.job_id);
        object.add("mechanism", mechanism_name(record.mechanism));
        object.add("node", record.identity.node);
        object.add("operation", operation_name(record.input.operation));
        object.add("received_at", record.received_at);
        object.add("record_id", record.record_id);
        if (record.outcome) {
            if (record.outcome.value().remainder) {
                object.add("remainder", *record.outcome.value().remainder);
            }
            object.add("result", record.outcome.value().result);
        }
        object.add("worker", record.identity.worker);
    }
    return line;
}

Result<std::int64_t> integer_field(const nlohmann::json& object, std::string_view field) {
    const auto it = object.find(field);
    if (it == object.end()) {
        return fail(ErrorCode::missing_field, "missing field '" + std::string(field) + "'",
                    std::string(field));
    }
    if (it->is_number_integer()) {
        if (it->is_number_unsigned() &&
            it->get<std::uint64_t>() >
                static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
            return fail(ErrorCode::out_of_range,
                        std::string(field) + " is outside the 64-bit signed integer range",
                        std::string(field));
        }
        return it->get<std::int64_t>();
    }
    if (it->is_number_float()) {
        const double value = it->get<double>();
        // JSON integers too large for 64 bits arrive here as doubles.
        if (std::isfinite(value) && std::trunc(value) == value &&
            (value >= 9223372036854775808.0 || value < -9223372036854775808.0)) {
            return fail(ErrorCode::out_of_range,
                        std::string(field) + " is outside the 64-bit signed integer range",
                        std::string(field));
        }
        return fail(ErrorCode::invalid_field,
                    std::string(field) + " must be an integer, got " + it->dump(),
                    std::string(field));
    }
    return fail(ErrorCode::invalid_field,
                std::string(field) + " must be an integer, got " + std::string(it->type_name()),
                std::string(field));
}

Result<std::string> string_field(const nlohmann::json& object, std::string_view field) {
    const auto it = object.find(field);
    if (it == object.end()) {
        return fail(ErrorCode::missing_field, "missing field '" + std::string(field) + "'",
                    std::string(field));
    }
    if (!it->is_string()) {
        return fail(ErrorCode::invalid_field,
                    std::string(field) + " must be a string, got " + std::string(it->type_name()),
                    std::string(field));
    }
    return it->get<std::string>();
}

Result<JobInput> job_input_from_json(const nlohmann::json& json) {
    BOOST_OUTCOME_TRYV(check_object(json));
    BOOST_OUTCOME_TRY(job_id_text, string_field(json, "job_id"));
    BOOST_OUTCOME_TRY(job_id, validate_job_id(job_id_text));
    BOOST_OUTCOME_TRY(operation_text, string_field(json, "operation"));
    BOOST_OUTCOME_TRY(operation, parse_operation(operation_text));
    BOOST_OUTCOME_TRY(a, integer_field(json, "a"));
    BOOST_OUTCOME_TRY(b, integer_field(json, "b"));
    return JobInput{job_id, operation, a, b};
}

Result<WorkerResult> worker_result_from_json(const nlohmann::json& json) {
    return parse_worker_result(json, false);
}

Result<JobRequestMessage> job_request_from_json(const nlohmann::json& json) {
    BOOST_OUTCOME_TRY(input, job_input_from_json(json));
    BOOST_OUTCOME_TRY(reply_to, string_field(json, "reply_to"));
    return JobRequestMessage{input, reply_to};
}

Result<ResultMessage> result_message_from_json(const nlohmann::json& json) {
    BOOST_OUTCOME_TRY(result, parse_worker_result(json, true));
    BOOST_OUTCOME_TRY(reply_to, string_field(json, "reply_to"));
    return ResultMessage{result, reply_to};
}

Result<LogRecord> log_record_from_json(const nlohmann::json& json) {
    LogRecord record;
    BOOST_OUTCOME_TRY(result, worker_result_from_json(json));
    record.input = result.input;
    record.outcome = result.outcome;
    record.identity = result.identity;
    BOOST_OUTCOME_TRY(mechanism_text, string_field(json, "mechanism"));
    BOOST_OUTCOME_TRY(mechanism, parse_mechanism(mechanism_text));
    record.mechanism = mechanism;
    for (auto [field, target] :
         {std::pair{"record_id", &record.record_id}, std::pair{"received_at", &record.received_at},
          std::pair{"completed_at", &record.completed_at}}) {
        BOOST_OUTCOME_TRY(value, string_field(json, field));
        *target = value;
    }
    if (record.record_id.empty() || record.record_id.size() > kMaxRecordIdLength) {
        return fail(ErrorCode::invalid_field,
                    "record_id must be 1 to " + std::to_string(kMaxRecordIdLength) + " characters",
                    "record_id");
    }
    return record;
}

}  // namespace calcmesh
