#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "calcmesh/error.hpp"
#include "job_index.hpp"

namespace calcmesh::log_collector {

/// When appended records are flushed to disk.
enum class SyncMode {
    group,  ///< records appended concurrently share one fdatasync (group commit)
    each,   ///< one fdatasync per record: the slow baseline, for benchmarks
};

/// A log record ready to store: its id (for de-duplication), its JSON text on one line, and
/// its job id (for the index that `/logs?job_id=` reads).
struct StoredLine {
    std::string record_id;
    std::string json;
    std::string job_id;
};

/// An append-only text file of JSON records, one per line, made durable with group commit.
///
/// A record is acknowledged only after the bytes are on disk. On opening, a torn last line
/// (a crash in the middle of a write) is detected and cut away, so a reader never sees it and
/// every acknowledged record is still there. Readers see committed records only. An index of
/// job ids (built at recovery, extended on every append; 16 bytes per record) lets a
/// read for one job go to its lines instead of scanning the file.
/// Thread-safe: `append` and `read` from any thread; a writer thread does all writes and syncs.
class LogStore {
  public:
    /// What opening the store found.
    struct Recovery {
        std::uint64_t records = 0;     ///< complete records in the file
        std::uint64_t torn_bytes = 0;  ///< bytes of an incomplete last line that were removed
    };
    struct AppendResult {
        std::size_t stored = 0;
        std::size_t duplicates = 0;  ///< records whose id was stored before; not written again
    };
    using AppendCallback = std::function<void(Result<AppendResult>)>;

    /// Records whose fields equal the given values; empty means any.
    struct Filter {
        std::string job_id;
        std::string operation;
        std::string worker;
    };
    /// A page of records, oldest first, and where the next page starts if there is one.
    struct Page {
        std::vector<std::string> records;
        std::optional<std::uint64_t> next_cursor;
    };

    /// Opens (creating if needed) `directory/logs.jsonl` and recovers it. Throws
    /// std::system_error when the directory or file cannot be used. A job lookup goes through
    /// an index of about the last `indexed_records` records, and scans the file before them.
    LogStore(const std::filesystem::path& directory, SyncMode mode,
             std::size_t indexed_records = JobIndex::kDefaultIndexedRecords);
    ~LogStore();
    LogStore(const LogStore&) = delete;
    LogStore& operator=(const LogStore&) = delete;

    const Recovery& recovery() const { return recovery_; }
    const std::filesystem::path& path() const { return path_; }

    /// Queues records; `done` runs on the writer thread once all of them are durable, or
    /// with `storage_failure` if the write failed (then none of them was kept).
    void append(std::vector<StoredLine> lines, AppendCallback done);

    /// Reads committed records from byte offset `cursor` (0 or a cursor returned earlier).
    /// Fails with `invalid_field` naming "cursor" when it does not start a record. It reads
    /// the disk and blocks: call it off the event loops.
    Result<Page> read(const Filter& filter, std::uint64_t cursor, std::size_t limit) const;

    std::uint64_t records() const { return records_.load(); }
    std::uint64_t syncs() const { return syncs_.load(); }
    /// How many of the last records a job lookup finds through the index, without a scan.
    std::uint64_t indexed_records() const;
    /// False after a failed write, until a write succeeds again.
    bool healthy() const { return healthy_.load(); }

  private:
    struct Pending {
        std::vector<StoredLine> lines;
        AppendCallback done;
    };
    void recover();
    void run_writer();
    /// Writes and syncs a batch; the results are per pending append.
    Result<std::vector<AppendResult>> write_batch(std::vector<Pending>& batch);
    bool remember(const std::string& record_id);
    /// The records of `filter.job_id` from `cursor` to `end`: scanned before the index, then
    /// found through it.
    /// Adds the records of [from, to) that match `filter` to `page`, up to `limit`; a record
    /// that no longer fits sets `next_cursor` and ends the scan.
    void scan(const Filter& filter, std::uint64_t from, std::uint64_t to, std::size_t limit,
              Page& page) const;
    Page read_job(const Filter& filter, std::uint64_t cursor, std::uint64_t end,
                  std::size_t limit) const;

    std::filesystem::path path_;
    SyncMode mode_;
    int fd_ = -1;
    Recovery recovery_;
    std::atomic<std::uint64_t> committed_bytes_{0};
    std::atomic<std::uint64_t> records_{0};
    std::atomic<std::uint64_t> syncs_{0};
    std::atomic<bool> healthy_{true};

    std::mutex mutex_;
    std::condition_variable wake_;
    std::vector<Pending> pending_;
    bool stopping_ = false;

    // Ids of the most recent records, touched by the writer thread only.
    std::unordered_set<std::string> recent_ids_;
    std::deque<std::string> recent_order_;

    // Where each job's records start, by a hash of the job id: written by the writer thread
    // (and recovery), read by readers. A hash collision only costs reading a line that the
    // filter then drops.
    mutable std::shared_mutex index_mutex_;
    JobIndex job_offsets_;

    std::thread writer_;
};

}  // namespace calcmesh::log_collector
