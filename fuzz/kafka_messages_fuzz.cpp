// Kafka message values: job requests as a worker reads them from <operation>_requests, and
// results as job_submitter reads them from results.

#include <string>

#include "calcmesh/job.hpp"
#include "fuzz_check.hpp"

namespace {

using namespace calcmesh;

/// A message that was read, written again as the services write it, reads as the same text.
template <class Message>
void check_read(const Result<Message>& message, Result<Message> (*read)(std::string_view)) {
    if (!message) {
        fuzz::check_clear_error(message.error());
        return;
    }
    const std::string text = to_json_text(message.value());
    const auto again = read(text);
    fuzz::check(again && to_json_text(again.value()) == text,
                "a message read differently once written again", text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto text = fuzz::as_text(data, size);
    check_read(read_job_request(text), &read_job_request);
    check_read(read_result_message(text), &read_result_message);
    return 0;
}
