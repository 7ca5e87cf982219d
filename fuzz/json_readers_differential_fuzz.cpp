// The fast readers (simdjson, common/src/well_formed.cpp) against the full ones (nlohmann,
// common/src/job.cpp), on the same bytes, for each message they both read.
//
// The fast readers' contract (job.hpp) is a message with every member it needs, each of the
// right type, and no error outcome. Within it both readers must accept and read the same values;
// outside it the fast reader must decline, which leaves the message to the full reader. So
// fast accepts exactly when the full reader accepts and the message is within the contract, and
// a service reads every message as the full reader alone would. Bodies over 128 KiB also go to
// the full reader by design; the runs keep inputs below that (-max_len).

#include <array>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "calcmesh/job.hpp"
#include "calcmesh/json_reader.hpp"
#include "fuzz_check.hpp"

namespace {

using namespace calcmesh;
using nlohmann::json;

/// The members a message of one kind may hold under the fast readers' contract.
struct Contract {
    std::set<std::string_view> required_texts;
    std::set<std::string_view> optional_texts;
    std::set<std::string_view> required_integers;
    std::set<std::string_view> optional_integers;
    bool unknown_members_allowed = true;

    bool known(const std::string& name) const {
        return required_texts.contains(name) || optional_texts.contains(name) ||
               required_integers.contains(name) || optional_integers.contains(name);
    }
};

const Contract kWorkerResult{{"job_id", "operation", "worker"},
                             {"instance", "cluster", "node"},
                             {"a", "b", "result"},
                             {"remainder"}};
const Contract kResultMessage{{"job_id", "operation", "worker", "reply_to"},
                              {"instance", "cluster", "node"},
                              {"a", "b", "result"},
                              {"remainder"}};
const Contract kJobRequest{{"job_id", "operation", "reply_to"}, {}, {"a", "b"}, {}};
const Contract kLogRecord{
    {"job_id", "operation", "worker", "mechanism", "record_id", "received_at", "completed_at"},
    {"instance", "cluster", "node"},
    {"a", "b", "result"},
    {"remainder"},
    false};

/// What nlohmann's parse of a document keeps quiet about: keys repeated within one object (it
/// keeps the last), by the depth of the object's members, and how deep the document nests.
struct Shape {
    std::map<int, std::set<std::string>> repeated_keys;
    int depth = 0;
};

Shape shape_of(std::string_view text) {
    Shape shape;
    std::vector<std::set<std::string>> open_objects;
    json::parser_callback_t observe = [&](int depth, json::parse_event_t event, json& parsed) {
        shape.depth = std::max(shape.depth, depth);
        switch (event) {
            case json::parse_event_t::object_start:
                open_objects.emplace_back();
                break;
            case json::parse_event_t::object_end:
                open_objects.pop_back();
                break;
            case json::parse_event_t::key:
                if (!open_objects.back().insert(parsed.get<std::string>()).second) {
                    shape.repeated_keys[depth].insert(parsed.get<std::string>());
                }
                break;
            default:
                break;
        }
        return true;
    };
    static_cast<void>(json::parse(text, observe, false));
    return shape;
}

/// The most nested document simdjson's parser takes by default.
constexpr int kFastMaxDepth = 1024;

bool is_int64(const json& value) {
    return value.is_number_integer() &&
           (!value.is_number_unsigned() ||
            value.get<std::uint64_t>() <=
                static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()));
}

/// Whether `object`, a message whose members sit at `member_depth`, is within the contract.
bool within(const Contract& contract, const json& object, const Shape& shape, int member_depth) {
    if (!object.is_object() || object.contains("error")) {
        return false;
    }
    if (const auto repeated = shape.repeated_keys.find(member_depth);
        repeated != shape.repeated_keys.end()) {
        for (const auto& key : repeated->second) {
            if (contract.known(key) || !contract.unknown_members_allowed) {
                return false;
            }
        }
    }
    for (const auto& [name, value] : object.items()) {
        const bool text =
            contract.required_texts.contains(name) || contract.optional_texts.contains(name);
        const bool integer =
            contract.required_integers.contains(name) || contract.optional_integers.contains(name);
        if ((text && !value.is_string()) || (integer && !is_int64(value)) ||
            (!text && !integer && !contract.unknown_members_allowed)) {
            return false;
        }
    }
    for (const auto& required : {contract.required_texts, contract.required_integers}) {
        for (const auto name : required) {
            if (!object.contains(name)) {
                return false;
            }
        }
    }
    return true;
}

/// The full reader of a /save_log body: one record, or a non-empty array of them.
Result<std::vector<LogRecord>> full_log_records(const json& body) {
    if (!body.is_array()) {
        BOOST_OUTCOME_TRY(record, log_record_from_json(body));
        return std::vector{record};
    }
    if (body.empty()) {
        return fail(ErrorCode::invalid_json, "the body holds no record");
    }
    std::vector<LogRecord> records;
    for (const auto& element : body) {
        BOOST_OUTCOME_TRY(record, log_record_from_json(element));
        records.push_back(record);
    }
    return records;
}

bool log_records_within(const json& body, const Shape& shape) {
    if (!body.is_array()) {
        return within(kLogRecord, body, shape, 1);
    }
    return std::all_of(body.begin(), body.end(), [&shape](const json& element) {
        return within(kLogRecord, element, shape, 2);
    });
}

/// Each message as the services write it: a worker's /save_log batch is an array of lines.
std::string written(const WorkerResult& result) {
    return to_json_text(result);
}
std::string written(const ResultMessage& message) {
    return to_json_text(message);
}
std::string written(const JobRequestMessage& request) {
    return to_json_text(request);
}
std::string written(const std::vector<LogRecord>& records) {
    std::string body = "[";
    for (const auto& record : records) {
        body += (body.size() > 1 ? "," : "") + log_line(record);
    }
    return body + "]";
}

/// Both readers of one kind of message, and the fast one on what the services write for what
/// the full one read.
template <class Message>
void compare(const std::string& kind, const std::optional<Message>& fast,
             const Result<Message>& full, bool within_contract,
             std::optional<Message> (*fast_reader)(std::string_view)) {
    fuzz::check(!fast || full, kind + ": the fast reader accepts what the full one refuses",
                full ? "" : full.error().message);
    const bool in_contract = full && within_contract;
    fuzz::check(fast.has_value() == in_contract,
                kind + (fast ? ": the fast reader accepts a message outside its contract"
                             : ": the fast reader declines a message within its contract"));
    if (!in_contract) {
        return;
    }
    fuzz::check(written(*fast) == written(full.value()), kind + ": the readers read differently",
                written(*fast) + "\n" + written(full.value()));
    const auto text = written(full.value());
    const auto reread = fast_reader(text);
    fuzz::check(reread && written(*reread) == text,
                kind + ": the fast reader does not read what the services write", text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto text = fuzz::as_text(data, size);
    // As the services' full readers parse: a NUL byte is refused, not taken for the end.
    const auto document = parse_json_text(text);
    const auto shape = shape_of(text);
    const bool parses = !document.is_discarded() && shape.depth <= kFastMaxDepth;

    compare("worker result", well_formed_worker_result(text), worker_result_from_json(document),
            parses && within(kWorkerResult, document, shape, 1), &well_formed_worker_result);
    compare("result message", well_formed_result_message(text), result_message_from_json(document),
            parses && within(kResultMessage, document, shape, 1), &well_formed_result_message);
    compare("job request", well_formed_job_request(text), job_request_from_json(document),
            parses && within(kJobRequest, document, shape, 1), &well_formed_job_request);
    compare("log records", well_formed_log_records(text), full_log_records(document),
            parses && log_records_within(document, shape), &well_formed_log_records);
    return 0;
}
