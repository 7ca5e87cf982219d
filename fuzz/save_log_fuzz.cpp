// POST /save_log bodies: one record or an array of them, read as log_collector reads them
// before storing.

#include <string>

#include "calcmesh/job.hpp"
#include "fuzz_check.hpp"
#include "log_collector_service.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace calcmesh;
    const auto lines = log_collector::read_save_log_body(std::string(fuzz::as_text(data, size)));
    if (!lines) {
        fuzz::check_clear_error(lines.error());
        return 0;
    }
    fuzz::check(!lines.value().empty(), "a body accepted with no record");
    // Every line stored is a complete record that reads back as itself: GET /logs serves
    // exactly these lines, and recovery reads them.
    for (const auto& line : lines.value()) {
        fuzz::check(line.json.find('\n') == std::string::npos, "a stored line holds a newline",
                    line.json);
        const auto record = log_record_from_json(nlohmann::json::parse(line.json, nullptr, false));
        fuzz::check(record.has_value(), "a stored line is not a valid record", line.json);
        fuzz::check(record.value().record_id == line.record_id,
                    "a line stored under another record_id", line.json);
        fuzz::check(log_line(record.value()) == line.json, "a stored line is not canonical",
                    line.json);
    }
    return 0;
}
