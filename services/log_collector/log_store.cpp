#include "log_store.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <system_error>

#include "calcmesh/json_reader.hpp"

namespace calcmesh::log_collector {

namespace {

constexpr std::size_t kRememberedIds = 100'000;
constexpr std::size_t kReadChunk = 256 * 1024;

[[noreturn]] void throw_errno(const std::string& what) {
    throw std::system_error(errno, std::generic_category(), what);
}

bool write_all(int fd, const char* data, std::size_t size) {
    while (size > 0) {
        const auto written = ::write(fd, data, size);
        if (written < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        data += written;
        size -= static_cast<std::size_t>(written);
    }
    return true;
}

void sync_directory(const std::filesystem::path& directory) {
    const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
    }
}

/// Reads whole lines of [offset, end) in chunks and hands each (without '\n') to `visit`,
/// with the offset just past it. Stops when `visit` returns false.
template <class Visit>
void for_each_line(int fd, std::uint64_t offset, std::uint64_t end, Visit&& visit) {
    std::string carry;
    std::vector<char> chunk(kReadChunk);
    std::uint64_t line_start = offset;
    while (offset < end) {
        const auto want =
            static_cast<std::size_t>(std::min<std::uint64_t>(kReadChunk, end - offset));
        const auto got = ::pread(fd, chunk.data(), want, static_cast<off_t>(offset));
        if (got <= 0) {
            if (got < 0 && errno == EINTR) {
                continue;
            }
            return;
        }
        std::size_t start = 0;
        for (std::size_t i = 0; i < static_cast<std::size_t>(got); ++i) {
            if (chunk[i] != '\n') {
                continue;
            }
            std::string_view line;
            if (carry.empty()) {
                line = std::string_view(chunk.data() + start, i - start);
            } else {
                carry.append(chunk.data() + start, i - start);
                line = carry;
            }
            const std::uint64_t next = offset + i + 1;
            const bool go_on = visit(line, line_start, next);
            carry.clear();
            line_start = next;
            start = i + 1;
            if (!go_on) {
                return;
            }
        }
        carry.append(chunk.data() + start, static_cast<std::size_t>(got) - start);
        offset += static_cast<std::uint64_t>(got);
    }
}

/// The line that starts at `offset` (without '\n'), read in small pieces: a record is a few
/// hundred bytes, and a lookup reads only the lines of one job.
std::string read_line_at(int fd, std::uint64_t offset, std::uint64_t end) {
    constexpr std::size_t kPiece = 1024;
    std::string line;
    while (offset < end) {
        const auto start = line.size();
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(kPiece, end - offset));
        line.resize(start + want);
        const auto got = ::pread(fd, line.data() + start, want, static_cast<off_t>(offset));
        if (got <= 0) {
            if (got < 0 && errno == EINTR) {
                line.resize(start);
                continue;
            }
            line.resize(start);
            break;
        }
        line.resize(start + static_cast<std::size_t>(got));
        if (const auto newline = line.find('\n', start); newline != std::string::npos) {
            line.resize(newline);
            break;
        }
        offset += static_cast<std::uint64_t>(got);
    }
    return line;
}

std::uint64_t job_key(std::string_view job_id) {
    return std::hash<std::string_view>{}(job_id);
}

bool field_equals(const nlohmann::json& record, const char* field, const std::string& wanted) {
    const auto it = record.find(field);
    return it != record.end() && it->is_string() && it->get_ref<const std::string&>() == wanted;
}

bool matches(const nlohmann::json& record, const LogStore::Filter& filter) {
    return (filter.job_id.empty() || field_equals(record, "job_id", filter.job_id)) &&
           (filter.operation.empty() || field_equals(record, "operation", filter.operation)) &&
           (filter.worker.empty() || field_equals(record, "worker", filter.worker));
}

}  // namespace

LogStore::LogStore(const std::filesystem::path& directory, SyncMode mode,
                   std::size_t indexed_records)
    : path_(directory / "logs.jsonl"), mode_(mode), job_offsets_(indexed_records) {
    std::error_code ec;
    std::filesystem::create_directories(directory, ec);
    if (ec) {
        throw std::system_error(ec, "cannot create data directory " + directory.string());
    }
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) {
        throw_errno("cannot open " + path_.string());
    }
    sync_directory(directory);
    recover();
    writer_ = std::thread([this] { run_writer(); });
}

LogStore::~LogStore() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_one();
    writer_.join();
    ::close(fd_);
}

void LogStore::recover() {
    struct stat status {};
    if (::fstat(fd_, &status) != 0) {
        throw_errno("cannot stat " + path_.string());
    }
    const auto size = static_cast<std::uint64_t>(status.st_size);
    std::uint64_t complete = 0;
    std::deque<std::string> ids;
    for_each_line(
        fd_, 0, size, [&](std::string_view line, std::uint64_t start, std::uint64_t next) {
            complete = next;
            ++recovery_.records;
            const auto record = parse_json_text(line);
            if (!record.is_object()) {
                return true;
            }
            if (const auto id = record.find("record_id"); id != record.end() && id->is_string()) {
                ids.push_back(id->get<std::string>());
                if (ids.size() > kRememberedIds) {
                    ids.pop_front();
                }
            }
            if (const auto job = record.find("job_id"); job != record.end() && job->is_string()) {
                job_offsets_.add(job_key(job->get_ref<const std::string&>()), start);
            }
            return true;
        });
    if (complete < size) {
        // A crash during a write left an incomplete last line, which was never acknowledged.
        recovery_.torn_bytes = size - complete;
        if (::ftruncate(fd_, static_cast<off_t>(complete)) != 0 || ::fsync(fd_) != 0) {
            throw_errno("cannot cut the torn last line of " + path_.string());
        }
        spdlog::warn("event=torn_record_removed file={} bytes={}", path_.string(),
                     recovery_.torn_bytes);
    }
    for (auto& id : ids) {
        remember(id);
    }
    committed_bytes_ = complete;
    records_ = recovery_.records;
}

bool LogStore::remember(const std::string& record_id) {
    if (!recent_ids_.insert(record_id).second) {
        return false;
    }
    recent_order_.push_back(record_id);
    if (recent_order_.size() > kRememberedIds) {
        recent_ids_.erase(recent_order_.front());
        recent_order_.pop_front();
    }
    return true;
}

void LogStore::append(std::vector<StoredLine> lines, AppendCallback done) {
    {
        std::lock_guard lock(mutex_);
        pending_.push_back(Pending{std::move(lines), std::move(done)});
    }
    wake_.notify_one();
}

void LogStore::run_writer() {
    for (;;) {
        std::vector<Pending> batch;
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
            if (pending_.empty()) {
                return;  // stopping, and every queued append is done
            }
            batch.swap(pending_);
        }
        // Everything that arrived while the previous sync ran goes out with one sync now.
        auto results = write_batch(batch);
        for (std::size_t i = 0; i < batch.size(); ++i) {
            if (results) {
                batch[i].done(results.value()[i]);
            } else {
                batch[i].done(results.error());
            }
        }
    }
}

Result<std::vector<LogStore::AppendResult>> LogStore::write_batch(std::vector<Pending>& batch) {
    std::string buffer;
    std::vector<AppendResult> results(batch.size());
    std::unordered_set<std::string> new_ids;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> new_offsets;  // job key, line start
    const auto committed = committed_bytes_.load();
    bool ok = true;
    for (std::size_t i = 0; i < batch.size() && ok; ++i) {
        for (auto& line : batch[i].lines) {
            if (recent_ids_.contains(line.record_id) || !new_ids.insert(line.record_id).second) {
                ++results[i].duplicates;
                continue;
            }
            ++results[i].stored;
            const auto start = buffer.size();
            new_offsets.emplace_back(job_key(line.job_id), committed + start);
            buffer += line.json;
            buffer += '\n';
            if (mode_ == SyncMode::each) {
                // The baseline: every record is written and synced on its own.
                ok = write_all(fd_, buffer.data() + start, buffer.size() - start) &&
                     ::fdatasync(fd_) == 0;
                syncs_.fetch_add(1);
                if (!ok) {
                    break;
                }
            }
        }
    }
    if (ok && mode_ == SyncMode::group && !buffer.empty()) {
        ok = write_all(fd_, buffer.data(), buffer.size()) && ::fdatasync(fd_) == 0;
        syncs_.fetch_add(1);
    }
    if (!ok) {
        const int error = errno;
        // Cut whatever part of the batch reached the file: none of it is acknowledged.
        if (::ftruncate(fd_, static_cast<off_t>(committed)) != 0) {
            spdlog::error("event=truncate_failed file={} error=\"{}\"", path_.string(),
                          std::strerror(errno));
        }
        healthy_ = false;
        spdlog::error("event=write_failed file={} error=\"{}\"", path_.string(),
                      std::strerror(error));
        return fail(
            ErrorCode::storage_failure,
            std::string("log_collector could not store the records: ") + std::strerror(error));
    }
    healthy_ = true;
    for (const auto& id : new_ids) {
        remember(id);
    }
    {
        // Indexed before they are committed: a reader never looks for records past the
        // committed end, so it sees each record in the file and in the index together.
        std::unique_lock lock(index_mutex_);
        for (const auto& [job_hash, offset] : new_offsets) {
            job_offsets_.add(job_hash, offset);
        }
    }
    records_.fetch_add(new_ids.size());
    committed_bytes_.store(committed + buffer.size());
    return results;
}

std::uint64_t LogStore::indexed_records() const {
    std::shared_lock lock(index_mutex_);
    return job_offsets_.size();
}

Result<LogStore::Page> LogStore::read(const Filter& filter, std::uint64_t cursor,
                                      std::size_t limit) const {
    const auto end = committed_bytes_.load();
    bool valid = cursor <= end;
    if (valid && cursor > 0) {
        char before = 0;
        valid = ::pread(fd_, &before, 1, static_cast<off_t>(cursor - 1)) == 1 && before == '\n';
    }
    if (!valid) {
        return fail(ErrorCode::invalid_field, "cursor does not point at a record", "cursor");
    }
    if (!filter.job_id.empty()) {
        return read_job(filter, cursor, end, limit);
    }
    Page page;
    scan(filter, cursor, end, limit, page);
    return page;
}

void LogStore::scan(const Filter& filter, std::uint64_t from, std::uint64_t to, std::size_t limit,
                    Page& page) const {
    const bool filtered =
        !filter.job_id.empty() || !filter.operation.empty() || !filter.worker.empty();
    for_each_line(fd_, from, to, [&](std::string_view line, std::uint64_t start, std::uint64_t) {
        if (page.records.size() == limit) {
            page.next_cursor = start;
            return false;
        }
        // A line that does not contain the job id is passed over without being parsed.
        if (filtered &&
            ((!filter.job_id.empty() && line.find(filter.job_id) == std::string_view::npos) ||
             !matches(parse_json_text(line), filter))) {
            return true;
        }
        page.records.emplace_back(line);
        return true;
    });
}

LogStore::Page LogStore::read_job(const Filter& filter, std::uint64_t cursor, std::uint64_t end,
                                  std::size_t limit) const {
    std::vector<std::uint64_t> starts;
    std::uint64_t indexed_from = 0;
    {
        std::shared_lock lock(index_mutex_);
        indexed_from = std::min(job_offsets_.indexed_from(), end);
        starts = job_offsets_.find(job_key(filter.job_id), cursor, end);
    }
    Page page;
    if (cursor < indexed_from) {
        scan(filter, cursor, indexed_from, limit, page);  // records older than the index
        if (page.next_cursor) {
            return page;
        }
    }
    for (const auto start : starts) {
        auto line = read_line_at(fd_, start, end);
        if (!matches(parse_json_text(line), filter)) {
            continue;  // another job with the same hash, or other operation or worker
        }
        if (page.records.size() == limit) {
            page.next_cursor = start;
            break;
        }
        page.records.push_back(std::move(line));
    }
    return page;
}

}  // namespace calcmesh::log_collector
