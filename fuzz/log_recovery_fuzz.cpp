// The log file as log_collector finds it when it starts: any bytes, as a crash, a full disk or
// another program may have left them. Recovery keeps every complete line and only those, GET
// /logs serves them as they are (filtered by job_id as asked), and a record_id read at recovery
// is known, so a record sent again is not stored twice.

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <string>
#include <vector>

#include "calcmesh/json_reader.hpp"
#include "fuzz_check.hpp"
#include "log_store.hpp"

namespace {

using namespace calcmesh;
using log_collector::LogStore;
namespace fs = std::filesystem;

/// The data directory of the store under test, removed when the run ends.
struct ScratchDirectory {
    fs::path path = fs::temp_directory_path() / ("log_recovery_fuzz-" + std::to_string(getpid()));
    ScratchDirectory() { fs::create_directories(path); }
    ~ScratchDirectory() {
        std::error_code ignored;
        fs::remove_all(path, ignored);
    }
};

const fs::path& data_directory() {
    static const ScratchDirectory kScratch;
    return kScratch.path;
}

std::string file_text(const fs::path& path) {
    std::ifstream file(path, std::ios::binary);
    std::ostringstream text;
    text << file.rdbuf();
    return text.str();
}

/// The member as the store reads it: through the services' full reader, which refuses a line
/// with a NUL byte where nlohmann alone would stop there and take what came before.
std::string string_member(const std::string& line, const char* name) {
    const auto record = parse_json_text(line);
    const auto member = record.find(name);
    return member != record.end() && member->is_string() ? member->get<std::string>() : "";
}

LogStore::AppendResult append(LogStore& store, std::vector<log_collector::StoredLine> lines) {
    std::promise<Result<LogStore::AppendResult>> done;
    store.append(std::move(lines), [&done](Result<LogStore::AppendResult> result) {
        done.set_value(std::move(result));
    });
    const auto result = done.get_future().get();
    fuzz::check(result.has_value(), "an append failed", result ? "" : result.error().message);
    return result.value();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    spdlog::set_level(spdlog::level::off);  // a torn line is logged on every such input
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string content(fuzz::as_text(data, size));
    const auto complete = content.rfind('\n') + 1;  // 0 when there is no complete line
    std::vector<std::string> lines;
    for (std::size_t start = 0; start < complete;) {
        const auto end = content.find('\n', start);
        lines.push_back(content.substr(start, end - start));
        start = end + 1;
    }
    const auto& directory = data_directory();
    std::ofstream(directory / "logs.jsonl", std::ios::binary | std::ios::trunc) << content;
    {
        LogStore store(directory, log_collector::SyncMode::group);
        fuzz::check(store.recovery().records == lines.size(), "recovery miscounted the records");
        fuzz::check(store.recovery().torn_bytes == size - complete,
                    "recovery cut other than the torn last line");

        const auto all = store.read({}, 0, lines.size() + 1);
        fuzz::check(all && all.value().records == lines && !all.value().next_cursor,
                    "the recovered records are not the file's complete lines");

        // GET /logs?job_id=<the first line's job_id>: exactly the lines with that job_id.
        const std::string job_id = lines.empty() ? "" : string_member(lines.front(), "job_id");
        if (!job_id.empty()) {
            std::vector<std::string> expected;
            for (const auto& line : lines) {
                if (string_member(line, "job_id") == job_id) {
                    expected.push_back(line);
                }
            }
            const auto filtered = store.read({job_id, "", ""}, 0, lines.size() + 1);
            fuzz::check(filtered && filtered.value().records == expected,
                        "a job_id filter served other lines", job_id);
        }

        // The last record_id read at recovery is remembered: sent again, it is not stored.
        for (auto line = lines.rbegin(); line != lines.rend(); ++line) {
            if (const auto record_id = string_member(*line, "record_id"); !record_id.empty()) {
                const auto again = append(store, {{record_id, *line}});
                fuzz::check(again.stored == 0 && again.duplicates == 1,
                            "a record_id read at recovery was stored again", record_id);
                break;
            }
        }
    }
    fuzz::check(file_text(directory / "logs.jsonl") == content.substr(0, complete),
                "the file after recovery is not its complete lines");
    return 0;
}
