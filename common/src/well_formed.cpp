// The fast readers of job.hpp: simdjson reads the messages as the services write them, in a
// tenth of the instructions of nlohmann's parser, which log_collector and job_submitter spent
// about a third of theirs on. Anything unusual is left to the nlohmann-based parsers, which
// explain what is wrong; so these only need to know what a good message looks like.

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <span>

#include "calcmesh/job.hpp"

namespace calcmesh {

namespace {

/// Larger documents go to nlohmann's parser: simdjson keeps buffers of about thirteen times
/// the largest document it read, per thread. Service bodies stay under 64 KiB.
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
    for (const auto member : object) {
        const auto mark = [&seen](Seen bit) {
            const bool repeated = (seen & bit) != 0;
            seen |= bit;
            return !repeated;
        };
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

/// The members of a successful worker result, in the order of `result_members`' arrays.
struct ResultFields {
    std::string operation;
    std::int64_t result = 0;
    std::int64_t remainder = 0;
};

constexpr std::size_t kResultTexts = 6;
constexpr std::size_t kResultIntegers = 4;
/// job_id, operation, worker, a, b and result are required; the rest of the identity and the
/// remainder are not.
constexpr Seen kRequiredResult = 0b000111 | integer_bit(0) | integer_bit(1) | integer_bit(2);

std::array<TextMember, kResultTexts> result_texts(WorkerResult& result, ResultFields& fields) {
    return {{{"job_id", &result.input.job_id},
             {"operation", &fields.operation},
             {"worker", &result.identity.worker},
             {"instance", &result.identity.instance},
             {"cluster", &result.identity.cluster},
             {"node", &result.identity.node}}};
}

std::array<IntegerMember, kResultIntegers> result_integers(WorkerResult& result,
                                                           ResultFields& fields) {
    return {{{"a", &result.input.a},
             {"b", &result.input.b},
             {"result", &fields.result},
             {"remainder", &fields.remainder}}};
}

/// Completes a result whose members were read: checks the values as the full parser does.
bool finish_result(Seen seen, const ResultFields& fields, WorkerResult& result) {
    if ((seen & kRequiredResult) != kRequiredResult || !validate_job_id(result.input.job_id)) {
        return false;
    }
    const auto operation = parse_operation(fields.operation);
    if (!operation) {
        return false;
    }
    result.input.operation = operation.value();
    Outcome outcome{fields.result, std::nullopt};
    if ((seen & integer_bit(3)) != 0) {
        outcome.remainder = fields.remainder;
    }
    result.outcome = outcome;
    return true;
}

std::optional<LogRecord> well_formed_log_record(simdjson::dom::element element) {
    simdjson::dom::object object;
    if (element.get_object().get(object)) {
        return std::nullopt;
    }
    WorkerResult result;
    ResultFields fields;
    LogRecord record;
    std::string mechanism;
    const auto base_texts = result_texts(result, fields);
    std::array<TextMember, kResultTexts + 4> texts{};
    std::copy(base_texts.begin(), base_texts.end(), texts.begin());
    texts[kResultTexts] = {"mechanism", &mechanism};
    texts[kResultTexts + 1] = {"record_id", &record.record_id};
    texts[kResultTexts + 2] = {"received_at", &record.received_at};
    texts[kResultTexts + 3] = {"completed_at", &record.completed_at};
    const auto seen = read_members(object, texts, result_integers(result, fields), false);
    constexpr Seen kMechanism = Seen{1} << kResultTexts;
    if (!seen || (*seen & kMechanism) == 0 || !finish_result(*seen, fields, result)) {
        return std::nullopt;
    }
    // Present, these must not be empty: empty stands for "absent" to the caller.
    for (std::size_t i = kResultTexts + 1; i < texts.size(); ++i) {
        if ((*seen & (Seen{1} << i)) != 0 && texts[i].target->empty()) {
            return std::nullopt;
        }
    }
    const auto parsed_mechanism = parse_mechanism(mechanism);
    if (!parsed_mechanism || record.record_id.size() > 64) {
        return std::nullopt;
    }
    record.input = std::move(result.input);
    record.outcome = std::move(result.outcome);
    record.identity = std::move(result.identity);
    record.mechanism = parsed_mechanism.value();
    return record;
}

}  // namespace

std::optional<WorkerResult> well_formed_worker_result(std::string_view text) {
    simdjson::dom::object object;
    if (text.size() > kMaxDocument ||
        thread_parser().parse(text.data(), text.size()).get_object().get(object)) {
        return std::nullopt;
    }
    WorkerResult result;
    ResultFields fields;
    const auto seen =
        read_members(object, result_texts(result, fields), result_integers(result, fields), true);
    if (!seen || !finish_result(*seen, fields, result)) {
        return std::nullopt;
    }
    return result;
}

std::optional<std::vector<LogRecord>> well_formed_log_records(std::string_view text) {
    simdjson::dom::element document;
    if (text.size() > kMaxDocument ||
        thread_parser().parse(text.data(), text.size()).get(document)) {
        return std::nullopt;
    }
    std::vector<LogRecord> records;
    simdjson::dom::array array;
    if (document.get_array().get(array) == simdjson::SUCCESS) {
        records.reserve(array.size());
        for (const auto element : array) {
            auto record = well_formed_log_record(element);
            if (!record) {
                return std::nullopt;
            }
            records.push_back(std::move(*record));
        }
    } else {
        auto record = well_formed_log_record(document);
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
