#include "log_collector_service.hpp"

#include <spdlog/spdlog.h>

#include "calcmesh/arithmetic.hpp"
#include "calcmesh/async_event.hpp"
#include "calcmesh/job.hpp"
#include "calcmesh/json_reader.hpp"

namespace calcmesh::log_collector {

namespace {

constexpr std::size_t kMaxPage = 50'000;
/// Threads that read the log file for `GET /logs`: reads wait for the disk and parse up to
/// kMaxPage records, so they stay off the event loops; two let a short lookup pass a long page.
constexpr std::size_t kReaderThreads = 2;

/// Checks one record of a `/save_log` body and gives its stored form. A record may omit
/// record_id (one is assigned) and the timestamps (set to now).
Result<StoredLine> stored_line(nlohmann::json record) {
    if (!record.is_object()) {
        return fail(ErrorCode::invalid_json, "a record must be a JSON object");
    }
    for (const auto& [key, value] : record.items()) {
        if (!is_log_record_member(key)) {
            return fail(ErrorCode::unknown_field, "unknown field '" + key + "'", key);
        }
    }
    if (!record.contains("record_id")) {
        record["record_id"] = new_id("r-");
    }
    std::string now;  // formatted only if a timestamp is missing
    for (const char* field : {"received_at", "completed_at"}) {
        if (!record.contains(field)) {
            if (now.empty()) {
                now = format_time(std::chrono::system_clock::now());
            }
            record[field] = now;
        }
    }
    BOOST_OUTCOME_TRY(parsed, log_record_from_json(record));
    return StoredLine{parsed.record_id, log_line(parsed), parsed.input.job_id};
}

/// Reads a `/save_log` body with nlohmann's parser: any body, every error explained (naming
/// the record of an array and the field).
Result<std::vector<StoredLine>> checked_lines(const std::string& text) {
    auto body = parse_json_text(text);
    if (body.is_discarded()) {
        return fail(ErrorCode::invalid_json, "the body is not valid JSON");
    }
    const bool batch = body.is_array();
    if (!batch) {
        body = nlohmann::json::array({std::move(body)});
    }
    if (body.empty()) {
        return fail(ErrorCode::invalid_json, "the body holds no record");
    }
    std::vector<StoredLine> lines;
    lines.reserve(body.size());
    for (std::size_t i = 0; i < body.size(); ++i) {
        auto line = stored_line(std::move(body[i]));
        if (!line) {
            auto error = line.error();
            if (batch) {
                error.message = "record " + std::to_string(i) + ": " + error.message;
            }
            return error;
        }
        lines.push_back(std::move(line).value());
    }
    return lines;
}

}  // namespace

Result<std::vector<StoredLine>> read_save_log_body(const std::string& text) {
    auto records = well_formed_log_records(text);
    if (!records) {
        return checked_lines(text);
    }
    std::vector<StoredLine> lines;
    lines.reserve(records->size());
    for (const auto& record : *records) {
        lines.push_back({record.record_id, log_line(record), record.input.job_id});
    }
    return lines;
}

void LogCollectorConfig::add_to(ConfigParser& parser) {
    common.port = 8082;
    common.add_to(parser);
    parser.add("data-dir", data_dir, "Directory of the log file (a persistent volume)");
    parser
        .add("sync-mode", sync_mode,
             "group: concurrent records share one fdatasync; each: one per record")
        ->check(CLI::IsMember({"group", "each"}));
    parser.add("ack-timeout-ms", ack_timeout_ms,
               "How long a request waits for the disk before answering 503");
    parser
        .add("index-records", index_records,
             "Most recent records that GET /logs?job_id= finds through the in-memory index "
             "(16 bytes each); older ones are found by scanning the file")
        ->check(whole_number(JobIndex::kBlockRecords, std::size_t{1} << 28));
}

LogCollectorService::LogCollectorService(Runtime& runtime, const LogCollectorConfig& config)
    : runtime_(runtime),
      ack_timeout_(config.ack_timeout_ms),
      store_(config.data_dir, config.sync_mode == "each" ? SyncMode::each : SyncMode::group,
             config.index_records),
      readers_(kReaderThreads),
      stored_(runtime.metrics().counter("calcmesh_log_records_stored_total",
                                        "Log records made durable since start.")),
      duplicates_(runtime.metrics().counter(
          "calcmesh_log_records_duplicate_total",
          "Log records received again (a retried request) and not stored twice.")) {
    runtime.metrics().gauge("calcmesh_log_records", "Log records in the file.",
                            [this] { return static_cast<double>(store_.records()); });
    runtime.metrics().gauge(
        "calcmesh_log_records_indexed",
        "The last records, of calcmesh_log_records, that a job_id lookup finds without a scan.",
        [this] { return static_cast<double>(store_.indexed_records()); });
    runtime.metrics().gauge("calcmesh_log_syncs_total", "fdatasync calls since start.",
                            [this] { return static_cast<double>(store_.syncs()); });
    spdlog::info("event=log_store_opened file={} records={} torn_bytes_removed={}",
                 store_.path().string(), store_.recovery().records, store_.recovery().torn_bytes);
}

void LogCollectorService::add_routes(Router& router) {
    router.add(http::verb::post, "/save_log",
               [this](Request request) { return save_log(std::move(request)); });
    router.add(http::verb::get, "/logs",
               [this](Request request) { return logs(std::move(request)); });
}

Readiness LogCollectorService::readiness() const {
    return {store_.healthy(),
            {{"storage",
              {{"file", store_.path().string()},
               {"writable", store_.healthy()},
               {"records", store_.records()}}}}};
}

Task<Response> LogCollectorService::save_log(Request request) {
    if (request.media_type() != "application/json") {
        co_return error_response({ErrorCode::unsupported_media_type,
                                  "POST /save_log takes application/json, got '" +
                                      std::string(request.message[http::field::content_type]) +
                                      "'"});
    }
    auto lines = read_save_log_body(request.message.body());
    if (!lines) {
        co_return error_response(lines.error());
    }

    auto durable = std::make_shared<AsyncEvent<Result<LogStore::AppendResult>>>(
        co_await net::this_coro::executor);
    store_.append(
        std::move(lines).value(),
        [durable](const Result<LogStore::AppendResult>& result) { durable->deliver(result); });
    const auto result =
        co_await durable->wait_until(std::chrono::steady_clock::now() + ack_timeout_);
    if (!result) {
        co_return error_response(
            {ErrorCode::storage_failure, "the disk did not confirm the write in time; retry"});
    }
    if (!*result) {
        co_return error_response(result->error());
    }
    stored_.add(result->value().stored);
    duplicates_.add(result->value().duplicates);
    co_return json_response(
        201, {{"stored", result->value().stored}, {"duplicates", result->value().duplicates}});
}

Task<Response> LogCollectorService::logs(Request request) {
    LogStore::Filter filter;
    std::size_t limit = kMaxPage;
    std::uint64_t cursor = 0;
    bool text = false;
    for (const auto& [name, value] : request.query) {
        if (name == "job_id") {
            filter.job_id = value;
        } else if (name == "worker") {
            filter.worker = value;
        } else if (name == "operation") {
            auto operation = parse_operation(value);
            if (!operation) {
                co_return error_response(operation.error());
            }
            filter.operation = operation_name(operation.value());
        } else if (name == "limit" || name == "cursor") {
            auto number = parse_integer(value, name);
            if (!number) {
                co_return error_response(number.error());
            }
            if (name == "limit" &&
                (number.value() < 1 || number.value() > static_cast<std::int64_t>(kMaxPage))) {
                co_return error_response({ErrorCode::invalid_field,
                                          "limit must be between 1 and " + std::to_string(kMaxPage),
                                          "limit"});
            }
            if (name == "cursor" && number.value() < 0) {
                co_return error_response(
                    {ErrorCode::invalid_field, "cursor must not be negative", "cursor"});
            }
            (name == "limit" ? limit : cursor) = static_cast<std::uint64_t>(number.value());
        } else if (name == "format") {
            if (value != "json" && value != "text") {
                co_return error_response(
                    {ErrorCode::invalid_field, "format must be json or text", "format"});
            }
            text = value == "text";
        } else {
            co_return error_response({ErrorCode::unknown_field,
                                      "unknown query parameter '" + name +
                                          "': expected job_id, operation, worker, limit, cursor "
                                          "or format",
                                      name});
        }
    }
    // The disk is read on the reader pool, so that the other connections of this loop (the
    // workers' /save_log among them) go on meanwhile; the answer comes back to this loop.
    auto page = std::make_shared<AsyncEvent<Response>>(co_await net::this_coro::executor);
    net::post(readers_, [this, page, filter = std::move(filter), cursor, limit, text,
                         query = std::move(request.query)] {
        page->deliver(read_page(filter, cursor, limit, text, query));
    });
    auto response = co_await page->wait_until(std::chrono::steady_clock::time_point::max());
    co_return std::move(*response);
}

Response LogCollectorService::read_page(const LogStore::Filter& filter, std::uint64_t cursor,
                                        std::size_t limit, bool text,
                                        const FormFields& query) const {
    auto page = store_.read(filter, cursor, limit);
    if (!page) {
        return error_response(page.error());
    }
    std::string body;
    if (text) {
        for (const auto& record : page.value().records) {
            body += record;
            body += '\n';
        }
    } else {
        body = "[";
        for (std::size_t i = 0; i < page.value().records.size(); ++i) {
            body += (i ? ",\n" : "\n") + page.value().records[i];
        }
        body += "\n]\n";
    }
    auto response = text_response(200, std::move(body),
                                  text ? "text/plain; charset=utf-8" : "application/json");
    if (const auto next = page.value().next_cursor) {
        // The next page: the same query from the cursor on.
        std::string next_query;
        for (const auto& [name, value] : query) {
            if (name != "cursor") {
                next_query += url_encode(name) + "=" + url_encode(value) + "&";
            }
        }
        response.set("X-Next-Cursor", std::to_string(*next));
        response.set(http::field::link, "</logs?" + next_query + "cursor=" + std::to_string(*next) +
                                            ">; rel=\"next\"");
    }
    return response;
}

}  // namespace calcmesh::log_collector
