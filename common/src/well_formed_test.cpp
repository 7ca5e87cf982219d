#include <gtest/gtest.h>

#include <regex>

#include "calcmesh/job.hpp"

namespace calcmesh {
namespace {

WorkerResult sample_result() {
    return {{"job-1", Operation::division, -7, 2},
            Outcome{-3, -1},
            {"division_worker", "w \"1\" \\ é\n\x01", "c1", "node-a"}};
}

LogRecord sample_record() {
    LogRecord record;
    record.record_id = "r-1";
    const auto result = sample_result();
    record.input = result.input;
    record.outcome = result.outcome;
    record.identity = result.identity;
    record.mechanism = Mechanism::kafka;
    record.received_at = "2026-11-28T15:04:05.123Z";
    record.completed_at = "2026-11-28T15:04:05.124Z";
    return record;
}

/// What the full parser reads from `text`, written back as text.
std::string checked_result(const std::string& text) {
    return to_json_text(worker_result_from_json(nlohmann::json::parse(text)).value());
}

TEST(WellFormed, WorkerResultReadsAsTheFullParserReadsIt) {
    auto no_remainder = sample_result();
    no_remainder.outcome = Outcome{42, std::nullopt};
    no_remainder.identity = {"addition_worker", "", "", ""};
    for (const std::string& text : std::vector<std::string>{
             to_json_text(sample_result()), to_json_text(no_remainder),
             std::string(R"( {"worker":"addition_worker","result":3,"operation":"addition",)"
                         R"( "job_id":"j.2","b":2,"a":1,"extra":[1,{"x":null}]} )")}) {
        const auto fast = well_formed_worker_result(text);
        ASSERT_TRUE(fast) << text;
        EXPECT_EQ(to_json_text(*fast), checked_result(text)) << text;
    }
}

TEST(WellFormed, LeavesEverythingUnusualToTheFullParser) {
    auto failed = sample_result();
    failed.outcome = fail(ErrorCode::division_by_zero, "b is 0", "b");
    const std::string base = R"("job_id":"j1","operation":"addition","worker":"addition_worker")";
    for (const std::string& text : std::vector<std::string>{
             to_json_text(failed), "{" + base + R"(,"a":1.5,"b":2,"result":3})",
             "{" + base + R"(,"a":"1","b":2,"result":3})",
             "{" + base + R"(,"a":9223372036854775808,"b":2,"result":3})",
             "{" + base + R"(,"a":1,"a":1,"b":2,"result":3})", "{" + base + R"(,"a":1,"b":2})",
             R"({"job_id":"has space","operation":"addition","worker":"w","a":1,"b":2,"result":3})",
             R"({"job_id":"j","operation":"power","worker":"w","a":1,"b":2,"result":3})",
             R"({"job_id":"j","operation":"addition","a":1,"b":2,"result":3})",
             R"({"job_id":"j","operation":"addition","worker":"w","a":1,"b":2,"result":3)",
             std::string("[]"), std::string("\"text\""),
             "{" + base + R"(,"a":1,"b":2,"result":3,"pad":")" + std::string(200'000, 'x') +
                 "\"}"}) {
        EXPECT_FALSE(well_formed_worker_result(text)) << text.substr(0, 120);
    }
}

TEST(WellFormed, KafkaMessagesReadAsTheFullParserReadsThem) {
    const ResultMessage message{sample_result(), "s-1"};
    const auto text = to_json_text(message);
    const auto fast = well_formed_result_message(text);
    ASSERT_TRUE(fast);
    EXPECT_EQ(to_json_text(*fast),
              to_json_text(result_message_from_json(nlohmann::json::parse(text)).value()));

    const JobRequestMessage request{sample_result().input, "s \"2\""};
    for (const std::string& request_text : std::vector<std::string>{
             to_json_text(request), R"({"x":[],"reply_to":"s","b":2,"a":1,"operation":)"
                                    R"("addition","job_id":"j"})"}) {
        const auto fast_request = well_formed_job_request(request_text);
        ASSERT_TRUE(fast_request) << request_text;
        EXPECT_EQ(to_json_text(*fast_request),
                  to_json_text(job_request_from_json(nlohmann::json::parse(request_text)).value()));
    }
}

TEST(WellFormed, LeavesUnusualKafkaMessagesToTheFullParser) {
    auto failed = sample_result();
    failed.outcome = fail(ErrorCode::division_by_zero, "b is 0", "b");
    EXPECT_FALSE(well_formed_result_message(to_json_text(ResultMessage{failed, "s-1"})));
    EXPECT_TRUE(read_result_message(to_json_text(ResultMessage{failed, "s-1"})))
        << "an error result is read by the full parser";
    EXPECT_FALSE(well_formed_result_message(to_json_text(sample_result()))) << "no reply_to";
    const std::string base = R"("job_id":"j","operation":"addition","reply_to":"s")";
    for (const std::string& text : std::vector<std::string>{
             "{" + base + R"(,"a":1})", "{" + base + R"(,"a":1.5,"b":2})",
             "{" + base + R"(,"a":1,"b":2,"b":2})", R"({"job_id":"j","a":1,"b":2})"}) {
        EXPECT_FALSE(well_formed_job_request(text)) << text;
    }
    const auto missing = read_job_request("{" + base + R"(,"a":1})");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().field, "b") << "the full parser names the field";
}

TEST(WellFormed, LogRecordsReadAsTheFullParserReadsThem) {
    auto other = sample_record();
    // The longest id there is: a job's record id for a job id of 64 characters.
    other.record_id = std::string(kMaxRecordIdLength, 'r');
    other.outcome = Outcome{5, std::nullopt};
    other.mechanism = Mechanism::http;
    const auto one = log_line(sample_record());
    // An empty time is kept as it is, by both.
    const auto no_time =
        std::regex_replace(one, std::regex(R"("received_at":"[^"]*")"), R"("received_at":"")");
    for (const std::string& text :
         std::vector<std::string>{one, "[" + one + "," + log_line(other) + "]", no_time}) {
        const auto fast = well_formed_log_records(text);
        ASSERT_TRUE(fast) << text;
        auto checked = nlohmann::json::parse(text);
        if (!checked.is_array()) {
            checked = nlohmann::json::array({checked});
        }
        ASSERT_EQ(fast->size(), checked.size());
        for (std::size_t i = 0; i < fast->size(); ++i) {
            EXPECT_EQ(log_line((*fast)[i]), log_line(log_record_from_json(checked[i]).value()));
        }
    }
}

TEST(WellFormed, LeavesUnusualLogRecordsToTheFullParser) {
    auto failed = sample_record();
    failed.outcome = fail(ErrorCode::overflow, "too big");
    const auto line = log_line(sample_record());
    const auto with = [&line](std::string_view member) {
        return "{" + std::string(member) + "," + line.substr(1);
    };
    for (const std::string& text : std::vector<std::string>{
             log_line(failed), with(R"("extra":1)"), "[" + line + "," + log_line(failed) + "]",
             std::string("[]"), "[[" + line + "]]",
             std::regex_replace(line, std::regex(R"("record_id":"r-1")"), R"("record_id":"")"),
             std::regex_replace(
                 line, std::regex(R"("record_id":"r-1")"),
                 R"("record_id":")" + std::string(kMaxRecordIdLength + 1, 'r') + "\""),
             std::regex_replace(line, std::regex(R"("mechanism":"kafka")"),
                                R"("mechanism":"smoke")"),
             std::regex_replace(line, std::regex(R"("mechanism":"kafka",)"), ""),
             std::regex_replace(line, std::regex(R"("record_id":"r-1",)"), ""),
             std::regex_replace(line, std::regex(R"("received_at":"[^"]*",)"), ""),
             std::regex_replace(line, std::regex(R"(,"completed_at":"[^"]*")"), "")}) {
        EXPECT_FALSE(well_formed_log_records(text)) << text;
    }
}

}  // namespace
}  // namespace calcmesh
