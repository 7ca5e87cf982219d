#include "calcmesh/job.hpp"

#include <algorithm>
#include <ctime>
#include <random>

#include "messages.hpp"

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

Result<std::string> messages::validate_record_id(std::string_view text) {
    if (text.empty() || text.size() > kMaxRecordIdLength) {
        return fail(ErrorCode::invalid_field,
                    "record_id must be 1 to " + std::to_string(kMaxRecordIdLength) + " characters",
                    "record_id");
    }
    return std::string(text);
}

namespace {

/// The message as compact JSON, with room for a typical one reserved.
template <const auto& fields, class Message>
std::string json_text(const Message& message, std::size_t typical_size) {
    std::string text;
    text.reserve(typical_size);
    schema::write_object<fields>(text, message);
    return text;
}

template <class Message, std::size_t size>
Result<Message> read_json(const nlohmann::json& json, const schema::Fields<Message, size>& fields) {
    Message message;
    BOOST_OUTCOME_TRYV(schema::read_object(json, fields, message));
    return message;
}

}  // namespace

std::string to_json_text(const WorkerResult& result) {
    return json_text<messages::kWorkerResult>(result, 256);
}

std::string to_json_text(const ResultMessage& message) {
    return json_text<messages::kResultMessage>(message, 256);
}

std::string to_json_text(const JobRequestMessage& request) {
    return json_text<messages::kJobRequest>(request, 128);
}

std::string log_line(const LogRecord& record) {
    return json_text<messages::kLogRecord>(record, 320);
}

bool is_log_record_member(std::string_view name) {
    return std::any_of(messages::kLogRecord.begin(), messages::kLogRecord.end(),
                       [name](const auto& field) { return field.name == name; });
}

Result<JobInput> job_input_from_json(const nlohmann::json& json) {
    return read_json(json, messages::kJobInput);
}

Result<WorkerResult> worker_result_from_json(const nlohmann::json& json) {
    return read_json(json, messages::kWorkerResult);
}

Result<JobRequestMessage> job_request_from_json(const nlohmann::json& json) {
    return read_json(json, messages::kJobRequest);
}

Result<ResultMessage> result_message_from_json(const nlohmann::json& json) {
    return read_json(json, messages::kResultMessage);
}

Result<LogRecord> log_record_from_json(const nlohmann::json& json) {
    return read_json(json, messages::kLogRecord);
}

}  // namespace calcmesh
