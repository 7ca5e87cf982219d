// The fast readers of job.hpp: simdjson reads the messages as the services write them, in a
// tenth of the instructions of nlohmann's parser, on which log_collector spent about half of
// its instructions per job and job_submitter a fifth (callgrind). Anything unusual is left to
// the nlohmann-based parsers, which explain what is wrong; so these only need to know what a
// good message looks like.

#include <simdjson.h>

#include <cstdint>
#include <type_traits>

#include "calcmesh/job.hpp"
#include "calcmesh/json_reader.hpp"
#include "messages.hpp"

namespace calcmesh {

namespace {

/// Larger documents go to nlohmann's parser: simdjson keeps buffers (tape, strings, indexes)
/// of about fourteen bytes per byte of the largest document it read, per thread. Service
/// bodies stay under 64 KiB.
constexpr std::size_t kMaxDocument = 128 * 1024;

simdjson::dom::parser& thread_parser() {
    thread_local simdjson::dom::parser parser(kMaxDocument);
    return parser;
}

/// The member the fast readers never read: a message with an error outcome is the full reader's.
constexpr std::string_view kErrorMember = "error";

/// The members a message must hold: bit i for fields[i].
template <class Message, std::size_t size>
constexpr std::uint64_t required_members(const schema::Fields<Message, size>& fields) {
    static_assert(size <= 64, "a message of more than 64 members");
    std::uint64_t required = 0;
    for (std::size_t i = 0; i < size; ++i) {
        if (fields[i].presence == schema::Presence::required) {
            required |= std::uint64_t{1} << i;
        }
    }
    return required;
}

/// Reads a message of `fields` from `element`. Fails on a repeated member (nlohmann keeps the
/// last one), a value of another type or one the message refuses, a missing required member,
/// an "error" member and, if `closed`, a member not in the table.
template <const auto& fields>
auto read_fast(simdjson::dom::element element, bool closed)
    -> std::optional<typename std::remove_cvref_t<decltype(fields)>::value_type::Message> {
    using Message = typename std::remove_cvref_t<decltype(fields)>::value_type::Message;
    simdjson::dom::object object;
    if (element.get_object().get(object)) {
        return std::nullopt;
    }
    Message message;
    std::uint64_t seen = 0;
    for (const auto member : object) {
        std::size_t at = 0;
        while (at < fields.size() && fields[at].name != member.key) {
            ++at;
        }
        if (at == fields.size()) {
            if (closed || member.key == kErrorMember) {
                return std::nullopt;
            }
            continue;
        }
        const auto bit = std::uint64_t{1} << at;
        if ((seen & bit) != 0) {
            return std::nullopt;
        }
        seen |= bit;
        const auto& field = fields[at];
        if (field.type == schema::Type::text) {
            std::string_view text;
            if (member.value.get_string().get(text) || !field.read_text(message, text)) {
                return std::nullopt;
            }
        } else if (field.type == schema::Type::integer) {
            std::int64_t value = 0;
            if (member.value.get_int64().get(value)) {
                return std::nullopt;
            }
            field.read_integer(message, value);
        } else {
            return std::nullopt;
        }
    }
    constexpr auto kRequired = required_members(fields);
    if ((seen & kRequired) != kRequired) {
        return std::nullopt;
    }
    return message;
}

/// The document `text` holds, parsed by this thread's parser (valid until its next parse).
std::optional<simdjson::dom::element> parse(std::string_view text) {
    simdjson::dom::element document;
    if (text.size() > kMaxDocument ||
        thread_parser().parse(text.data(), text.size()).get(document)) {
        return std::nullopt;
    }
    return document;
}

}  // namespace

std::optional<WorkerResult> well_formed_worker_result(std::string_view text) {
    const auto document = parse(text);
    return document ? read_fast<messages::kWorkerResult>(*document, false) : std::nullopt;
}

std::optional<ResultMessage> well_formed_result_message(std::string_view text) {
    const auto document = parse(text);
    return document ? read_fast<messages::kResultMessage>(*document, false) : std::nullopt;
}

std::optional<JobRequestMessage> well_formed_job_request(std::string_view text) {
    const auto document = parse(text);
    return document ? read_fast<messages::kJobRequest>(*document, false) : std::nullopt;
}

namespace {

/// `fast(text)` if it reads the message, else `full` on nlohmann's parse of it.
template <class Message>
Result<Message> read_message(std::string_view text,
                             std::optional<Message> (*fast)(std::string_view),
                             Result<Message> (*full)(const nlohmann::json&)) {
    if (auto message = fast(text)) {
        return std::move(*message);
    }
    return full(parse_json_text(text));
}

}  // namespace

Result<WorkerResult> read_worker_result(std::string_view text) {
    return read_message(text, &well_formed_worker_result, &worker_result_from_json);
}

Result<ResultMessage> read_result_message(std::string_view text) {
    return read_message(text, &well_formed_result_message, &result_message_from_json);
}

Result<JobRequestMessage> read_job_request(std::string_view text) {
    return read_message(text, &well_formed_job_request, &job_request_from_json);
}

std::optional<std::vector<LogRecord>> well_formed_log_records(std::string_view text) {
    const auto document = parse(text);
    if (!document) {
        return std::nullopt;
    }
    simdjson::dom::array array;
    if (document->get_array().get(array) != simdjson::SUCCESS) {
        auto record = read_fast<messages::kLogRecord>(*document, true);
        return record ? std::optional(std::vector{std::move(*record)}) : std::nullopt;
    }
    std::vector<LogRecord> records;
    records.reserve(array.size());
    for (const auto element : array) {
        auto record = read_fast<messages::kLogRecord>(element, true);
        if (!record) {
            return std::nullopt;
        }
        records.push_back(std::move(*record));
    }
    if (records.empty()) {
        return std::nullopt;
    }
    return records;
}

}  // namespace calcmesh
