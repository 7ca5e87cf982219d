// The fast readers of job.hpp: simdjson reads the messages as the services write them, in a
// tenth of the instructions of nlohmann's parser, on which log_collector spent about half of
// its instructions per job and job_submitter a fifth (callgrind). Anything unusual is left to
// the nlohmann-based parsers, which explain what is wrong; so these only need to know what a
// good message looks like.

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <span>

#include "calcmesh/job.hpp"
#include "calcmesh/json_reader.hpp"

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

struct TextMember {
    std::string_view name;
    std::string* target;
};

struct IntegerMember {
    std::string_view name;
    std::int64_t* target;
};

/// Which members a message has: bit i for texts[i], bit 16 + i for integers[i].
using Seen = std::uint32_t;
constexpr Seen integer_bit(std::size_t i) {
    return Seen{1} << (16 + i);
}

/// Reads the members of `object` into their targets. Fails on a repeated member (nlohmann
/// keeps the last one), a value of another type, an "error" member and, unless
/// `ignore_unknown`, a member not listed.
std::optional<Seen> read_members(simdjson::dom::object object, std::span<const TextMember> texts,
                                 std::span<const IntegerMember> integers, bool ignore_unknown) {
    Seen seen = 0;
    const auto mark = [&seen](Seen bit) {
        const bool repeated = (seen & bit) != 0;
        seen |= bit;
        return !repeated;
    };
    for (const auto member : object) {
        bool known = false;
        for (std::size_t i = 0; i < texts.size() && !known; ++i) {
            if (member.key == texts[i].name) {
                std::string_view text;
                if (!mark(Seen{1} << i) || member.value.get_string().get(text)) {
                    return std::nullopt;
                }
                texts[i].target->assign(text);
                known = true;
            }
        }
        for (std::size_t i = 0; i < integers.size() && !known; ++i) {
            if (member.key == integers[i].name) {
                if (!mark(integer_bit(i)) || member.value.get_int64().get(*integers[i].target)) {
                    return std::nullopt;
                }
                known = true;
            }
        }
        if (!known && (!ignore_unknown || member.key == "error")) {
            return std::nullopt;
        }
    }
    return seen;
}

/// Reads a successful worker result from `element`, and `extra` text members of the message
/// that carries it (`extra_seen` tells which were present: bit i for extra[i]).
std::optional<WorkerResult> read_result(simdjson::dom::element element,
                                        std::span<const TextMember> extra, bool ignore_unknown,
                                        Seen& extra_seen) {
    simdjson::dom::object object;
    if (element.get_object().get(object)) {
        return std::nullopt;
    }
    WorkerResult result;
    std::string operation;
    std::int64_t value = 0;
    std::int64_t remainder = 0;
    constexpr std::size_t kBase = 6;
    std::array<TextMember, kBase + 4> texts{{{"job_id", &result.input.job_id},
                                             {"operation", &operation},
                                             {"worker", &result.identity.worker},
                                             {"instance", &result.identity.instance},
                                             {"cluster", &result.identity.cluster},
                                             {"node", &result.identity.node}}};
    if (extra.size() > texts.size() - kBase) {
        return std::nullopt;
    }
    std::copy(extra.begin(), extra.end(), texts.begin() + kBase);
    const std::array<IntegerMember, 4> integers{{{"a", &result.input.a},
                                                 {"b", &result.input.b},
                                                 {"result", &value},
                                                 {"remainder", &remainder}}};
    const auto seen = read_members(object, std::span(texts).first(kBase + extra.size()), integers,
                                   ignore_unknown);
    // job_id, operation, worker, a, b and result are required; the rest of the identity and
    // the remainder are not.
    constexpr Seen kRequired = 0b111 | integer_bit(0) | integer_bit(1) | integer_bit(2);
    if (!seen || (*seen & kRequired) != kRequired || !validate_job_id(result.input.job_id)) {
        return std::nullopt;
    }
    const auto parsed_operation = parse_operation(operation);
    if (!parsed_operation) {
        return std::nullopt;
    }
    result.input.operation = parsed_operation.value();
    Outcome outcome{value, std::nullopt};
    if ((*seen & integer_bit(3)) != 0) {
        outcome.remainder = remainder;
    }
    result.outcome = outcome;
    extra_seen = (*seen >> kBase) & ((Seen{1} << extra.size()) - 1);
    return result;
}

std::optional<LogRecord> well_formed_log_record(simdjson::dom::element element) {
    LogRecord record;
    std::string mechanism;
    const std::array<TextMember, 4> extra{{{"mechanism", &mechanism},
                                           {"record_id", &record.record_id},
                                           {"received_at", &record.received_at},
                                           {"completed_at", &record.completed_at}}};
    Seen seen = 0;
    auto result = read_result(element, extra, false, seen);
    // All four are required: a record that lacks an id or a time gets it from log_collector.
    if (!result || seen != 0b1111) {
        return std::nullopt;
    }
    const auto parsed_mechanism = parse_mechanism(mechanism);
    if (!parsed_mechanism || record.record_id.empty() ||
        record.record_id.size() > kMaxRecordIdLength) {
        return std::nullopt;
    }
    record.input = std::move(result->input);
    record.outcome = std::move(result->outcome);
    record.identity = std::move(result->identity);
    record.mechanism = parsed_mechanism.value();
    return record;
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
    Seen seen = 0;
    return document ? read_result(*document, {}, true, seen) : std::nullopt;
}

std::optional<ResultMessage> well_formed_result_message(std::string_view text) {
    const auto document = parse(text);
    std::string reply_to;
    Seen seen = 0;
    auto result =
        document ? read_result(*document, std::array{TextMember{"reply_to", &reply_to}}, true, seen)
                 : std::nullopt;
    if (!result || seen == 0) {
        return std::nullopt;
    }
    return ResultMessage{std::move(*result), std::move(reply_to)};
}

std::optional<JobRequestMessage> well_formed_job_request(std::string_view text) {
    const auto document = parse(text);
    simdjson::dom::object object;
    if (!document || document->get_object().get(object)) {
        return std::nullopt;
    }
    JobRequestMessage request;
    std::string operation;
    const std::array<TextMember, 3> texts{{{"job_id", &request.input.job_id},
                                           {"operation", &operation},
                                           {"reply_to", &request.reply_to}}};
    const std::array<IntegerMember, 2> integers{{{"a", &request.input.a}, {"b", &request.input.b}}};
    const auto seen = read_members(object, texts, integers, true);
    constexpr Seen kAll = 0b111 | integer_bit(0) | integer_bit(1);
    if (!seen || *seen != kAll || !validate_job_id(request.input.job_id)) {
        return std::nullopt;
    }
    const auto parsed_operation = parse_operation(operation);
    if (!parsed_operation) {
        return std::nullopt;
    }
    request.input.operation = parsed_operation.value();
    return request;
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
        auto record = well_formed_log_record(*document);
        return record ? std::optional(std::vector{std::move(*record)}) : std::nullopt;
    }
    std::vector<LogRecord> records;
    records.reserve(array.size());
    for (const auto element : array) {
        auto record = well_formed_log_record(element);
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
