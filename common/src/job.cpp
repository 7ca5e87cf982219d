#include "calcmesh/job.hpp"

#include <array>
#include <cmath>
#include <ctime>
#include <limits>
#include <random>

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
    using namespace std::chrono;
    const auto since_epoch = time.time_since_epoch();
    const std::time_t seconds = duration_cast<std::chrono::seconds>(since_epoch).count();
    const auto millis = duration_cast<milliseconds>(since_epoch).count() % 1000;
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    std::array<char, 32> buffer{};
    const auto length = std::strftime(buffer.data(), buffer.size(), "%Y-%m-%dT%H:%M:%S", &utc);
    std::array<char, 8> fraction{};
    std::snprintf(fraction.data(), fraction.size(), ".%03dZ", static_cast<int>(millis));
    return std::string(buffer.data(), length) + fraction.data();
}

nlohmann::json to_json(const WorkerIdentity& identity) {
    return {{"worker", identity.worker},
            {"instance", identity.instance},
            {"cluster", identity.cluster},
            {"node", identity.node}};
}

namespace {

nlohmann::json input_json(const JobInput& input) {
    return {{"job_id", input.job_id},
            {"operation", operation_name(input.operation)},
            {"a", input.a},
            {"b", input.b}};
}

void merge(nlohmann::json& into, const nlohmann::json& from) {
    for (const auto& [key, value] : from.items()) {
        into[key] = value;
    }
}

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
        auto message = error->is_object() ? string_field(*error, "message") : fail(ErrorCode::invalid_field, "");
        auto code = error->is_object() ? string_field(*error, "code") : fail(ErrorCode::invalid_field, "");
        if (!message || !code) {
            return fail(ErrorCode::invalid_field,
                        "error must be an object with string fields code and message", "error");
        }
        for (auto candidate = ErrorCode::invalid_json; candidate <= ErrorCode::internal;
             candidate = static_cast<ErrorCode>(static_cast<int>(candidate) + 1)) {
            if (error_code_name(candidate) == code.value()) {
                return ReportedOutcome{fail(candidate, message.value())};
            }
        }
        return ReportedOutcome{fail(ErrorCode::internal, message.value())};
    }
    if (!json.contains("result")) {
        return fail(ErrorCode::missing_field, "expected 'result' or 'error'", "result");
    }
    auto result = integer_field(json, "result");
    if (!result) {
        return result.error();
    }
    Outcome outcome{result.value(), std::nullopt};
    if (json.contains("remainder")) {
        auto remainder = integer_field(json, "remainder");
        if (!remainder) {
            return remainder.error();
        }
        outcome.remainder = remainder.value();
    }
    return ReportedOutcome{outcome};
}

Result<WorkerIdentity> identity_from_json(const nlohmann::json& json) {
    WorkerIdentity identity;
    auto worker = string_field(json, "worker");
    if (!worker) {
        return worker.error();
    }
    identity.worker = worker.value();
    // The other identity fields are informative; a peer that omits them is still understood.
    for (auto [field, target] : {std::pair{"instance", &identity.instance},
                                 std::pair{"cluster", &identity.cluster},
                                 std::pair{"node", &identity.node}}) {
        if (auto value = json.find(field); value != json.end() && value->is_string()) {
            *target = value->get<std::string>();
        }
    }
    return identity;
}

}  // namespace

void put_outcome(nlohmann::json& json, const Result<Outcome>& outcome) {
    if (outcome) {
        json["result"] = outcome.value().result;
        if (outcome.value().remainder) {
            json["remainder"] = *outcome.value().remainder;
        }
    } else {
        json["error"] = error_json(outcome.error())["error"];
    }
}

nlohmann::json to_json(const WorkerResult& result) {
    auto json = input_json(result.input);
    put_outcome(json, result.outcome);
    merge(json, to_json(result.identity));
    return json;
}

nlohmann::json to_json(const JobRequestMessage& request) {
    auto json = input_json(request.input);
    json["reply_to"] = request.reply_to;
    return json;
}

nlohmann::json to_json(const ResultMessage& message) {
    auto json = to_json(message.result);
    json["reply_to"] = message.reply_to;
    return json;
}

nlohmann::json to_json(const LogRecord& record) {
    nlohmann::json json = {{"record_id", record.record_id}};
    merge(json, input_json(record.input));
    put_outcome(json, record.outcome);
    json["mechanism"] = mechanism_name(record.mechanism);
    merge(json, to_json(record.identity));
    json["received_at"] = record.received_at;
    json["completed_at"] = record.completed_at;
    return json;
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
    if (auto ok = check_object(json); !ok) {
        return ok.error();
    }
    auto job_id_text = string_field(json, "job_id");
    if (!job_id_text) {
        return job_id_text.error();
    }
    auto job_id = validate_job_id(job_id_text.value());
    if (!job_id) {
        return job_id.error();
    }
    auto operation_text = string_field(json, "operation");
    if (!operation_text) {
        return operation_text.error();
    }
    auto operation = parse_operation(operation_text.value());
    if (!operation) {
        return operation.error();
    }
    auto a = integer_field(json, "a");
    if (!a) {
        return a.error();
    }
    auto b = integer_field(json, "b");
    if (!b) {
        return b.error();
    }
    return JobInput{job_id.value(), operation.value(), a.value(), b.value()};
}

Result<WorkerResult> worker_result_from_json(const nlohmann::json& json) {
    auto input = job_input_from_json(json);
    if (!input) {
        return input.error();
    }
    auto identity = identity_from_json(json);
    if (!identity) {
        return identity.error();
    }
    auto outcome = outcome_from_json(json);
    if (!outcome) {
        return outcome.error();
    }
    return WorkerResult{input.value(), outcome.value().outcome, identity.value()};
}

Result<JobRequestMessage> job_request_from_json(const nlohmann::json& json) {
    auto input = job_input_from_json(json);
    if (!input) {
        return input.error();
    }
    auto reply_to = string_field(json, "reply_to");
    if (!reply_to) {
        return reply_to.error();
    }
    return JobRequestMessage{input.value(), reply_to.value()};
}

Result<ResultMessage> result_message_from_json(const nlohmann::json& json) {
    if (auto ok = check_object(json); !ok) {
        return ok.error();
    }
    auto reply_to = string_field(json, "reply_to");
    if (!reply_to) {
        return reply_to.error();
    }
    if (!json.contains("error")) {
        auto result = worker_result_from_json(json);
        if (!result) {
            return result.error();
        }
        return ResultMessage{result.value(), reply_to.value()};
    }
    auto job_id = string_field(json, "job_id");
    if (!job_id) {
        return job_id.error();
    }
    auto identity = identity_from_json(json);
    if (!identity) {
        return identity.error();
    }
    auto outcome = outcome_from_json(json);
    if (!outcome) {
        return outcome.error();
    }
    // Operands are informative here: the job_submitter knows them.
    auto input = job_input_from_json(json);
    WorkerResult result{input ? input.value() : JobInput{job_id.value()}, outcome.value().outcome,
                        identity.value()};
    return ResultMessage{std::move(result), reply_to.value()};
}

Result<LogRecord> log_record_from_json(const nlohmann::json& json) {
    auto input = job_input_from_json(json);
    if (!input) {
        return input.error();
    }
    LogRecord record;
    record.input = input.value();
    auto outcome = outcome_from_json(json);
    if (!outcome) {
        return outcome.error();
    }
    record.outcome = outcome.value().outcome;
    auto mechanism_text = string_field(json, "mechanism");
    if (!mechanism_text) {
        return mechanism_text.error();
    }
    auto mechanism = parse_mechanism(mechanism_text.value());
    if (!mechanism) {
        return mechanism.error();
    }
    record.mechanism = mechanism.value();
    auto identity = identity_from_json(json);
    if (!identity) {
        return identity.error();
    }
    record.identity = identity.value();
    for (auto [field, target] : {std::pair{"record_id", &record.record_id},
                                 std::pair{"received_at", &record.received_at},
                                 std::pair{"completed_at", &record.completed_at}}) {
        auto value = string_field(json, field);
        if (!value) {
            return value.error();
        }
        *target = value.value();
    }
    if (record.record_id.empty() || record.record_id.size() > 64) {
        return fail(ErrorCode::invalid_field, "record_id must be 1 to 64 characters",
                    "record_id");
    }
    return record;
}

}  // namespace calcmesh
