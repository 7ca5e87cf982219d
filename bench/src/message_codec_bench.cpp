// Writes and reads each wire message of a job many times, one phase per function, so that
// callgrind counts the instructions each costs (bench/message-callgrind runs it).

#include <chrono>
#include <cstdio>
#include <string>

#include "calcmesh/job.hpp"
#include "job_table.hpp"

namespace message_bench {

using namespace calcmesh;

constexpr int kRounds = 20'000;

WorkerResult sample_result() {
    return {{"j-1ebe2f0d59763414", Operation::division, 7, 2},
            Outcome{3, 1},
            {"division_worker", "division_worker-7d9f8c6b5-x2k4q", "c3b-workers", "node-a"}};
}

LogRecord sample_record() {
    const auto result = sample_result();
    LogRecord record;
    record.record_id = job_record_id(result.input);
    record.input = result.input;
    record.outcome = result.outcome;
    record.identity = result.identity;
    record.mechanism = Mechanism::kafka;
    record.received_at = "2026-11-28T15:04:05.123Z";
    record.completed_at = "2026-11-28T15:04:05.124Z";
    return record;
}

job_submitter::Job sample_job() {
    const auto result = sample_result();
    job_submitter::Job job;
    job.input = result.input;
    job.mechanism = Mechanism::kafka;
    job.status = job_submitter::JobStatus::completed;
    job.outcome = result.outcome;
    job.worker = result.identity;
    job.submitted_at = std::chrono::system_clock::now();
    job.completed_at = job.submitted_at;
    job.elapsed_ms = 0.84;
    return job;
}

// Each phase is a function of its own, named in callgrind's output, and returns something that
// depends on every round, so none is optimised away.

template <class Step>
[[gnu::always_inline]] inline std::size_t repeat(Step step) {
    std::size_t total = 0;
    for (int i = 0; i < kRounds; ++i) {
        total += step();
    }
    return total;
}

[[gnu::noinline]] std::size_t write_worker_result(const WorkerResult& result) {
    return repeat([&] { return to_json_text(result).size(); });
}

[[gnu::noinline]] std::size_t read_worker_result(const std::string& text) {
    return repeat([&] { return well_formed_worker_result(text).has_value(); });
}

[[gnu::noinline]] std::size_t write_result_message(const ResultMessage& message) {
    return repeat([&] { return to_json_text(message).size(); });
}

[[gnu::noinline]] std::size_t read_result_message(const std::string& text) {
    return repeat([&] { return well_formed_result_message(text).has_value(); });
}

[[gnu::noinline]] std::size_t write_job_request(const JobRequestMessage& request) {
    return repeat([&] { return to_json_text(request).size(); });
}

[[gnu::noinline]] std::size_t read_job_request(const std::string& text) {
    return repeat([&] { return well_formed_job_request(text).has_value(); });
}

[[gnu::noinline]] std::size_t write_log_record(const LogRecord& record) {
    return repeat([&] { return log_line(record).size(); });
}

[[gnu::noinline]] std::size_t read_log_record(const std::string& text) {
    return repeat([&] { return well_formed_log_records(text).has_value(); });
}

[[gnu::noinline]] std::size_t write_job(const job_submitter::Job& job) {
    return repeat([&] { return job_submitter::to_json_text(job).size(); });
}

}  // namespace message_bench

int main() {
    using namespace message_bench;
    const auto result = sample_result();
    const ResultMessage message{result, "s-0123456789abcdef"};
    const JobRequestMessage request{result.input, message.reply_to};
    const auto record = sample_record();
    std::size_t total = write_worker_result(result);
    total += read_worker_result(to_json_text(result));
    total += write_result_message(message);
    total += read_result_message(to_json_text(message));
    total += write_job_request(request);
    total += read_job_request(to_json_text(request));
    total += write_log_record(record);
    total += read_log_record(log_line(record));
    total += write_job(sample_job());
    std::printf("rounds %d, checksum %zu\n", kRounds, total);
    return 0;
}
