#pragma once

#include <memory>
#include <string>
#include <vector>

#include "calcmesh/service.hpp"
#include "log_store.hpp"

namespace calcmesh::log_collector {

/// Configuration of log_collector.
struct LogCollectorConfig {
    CommonConfig common;
    std::string data_dir = "data";
    std::string sync_mode = "group";
    unsigned ack_timeout_ms = 30'000;
    std::size_t index_records = JobIndex::kDefaultIndexedRecords;

    void add_to(ConfigParser& parser);
};

/// Reads a `/save_log` body, one record or an array of them, as the lines to store: the
/// workers' complete records with the fast reader, anything else checked field by field (a
/// record may omit record_id, which is assigned, and its timestamps, set to now). The first
/// bad record fails the whole body, naming the record and the field.
Result<std::vector<StoredLine>> read_save_log_body(const std::string& text);

/// log_collector: stores the workers' log records durably (`POST /save_log`) and serves them
/// (`GET /logs`). It is the shared service of the case study, used from several clusters.
class LogCollectorService final : public Application {
  public:
    LogCollectorService(Runtime& runtime, const LogCollectorConfig& config);

    void add_routes(Router& router) override;
    Readiness readiness() const override;

  private:
    Task<Response> save_log(Request request);
    Task<Response> logs(Request request);
    /// A page of `GET /logs`, read from the disk: runs on a reader thread.
    Response read_page(const LogStore::Filter& filter, std::uint64_t cursor, std::size_t limit,
                       bool text, const FormFields& query) const;

    Runtime& runtime_;
    std::chrono::milliseconds ack_timeout_;
    LogStore store_;
    /// Where `GET /logs` reads the file; declared after the store, so it stops first.
    net::thread_pool readers_;
    Counter& stored_;
    Counter& duplicates_;
};

}  // namespace calcmesh::log_collector
