#include "calcmesh/job.hpp"

#include <gtest/gtest.h>

#include <set>

namespace calcmesh {
namespace {

TEST(IntegerField, ClassifiesEveryKindOfNumber) {
    const auto json = nlohmann::json::parse(
        R"({"ok": -5, "big": 9223372036854775807, "too_big": 9223372036854775808,
            "huge": 123456789012345678901234567890, "fraction": 1.5, "text": "6"})");
    EXPECT_EQ(integer_field(json, "ok").value(), -5);
    EXPECT_EQ(integer_field(json, "big").value(), 9223372036854775807);
    EXPECT_EQ(integer_field(json, "too_big").error().code, ErrorCode::out_of_range);
    EXPECT_EQ(integer_field(json, "huge").error().code, ErrorCode::out_of_range);
    EXPECT_EQ(integer_field(json, "fraction").error().code, ErrorCode::invalid_field);
    EXPECT_EQ(integer_field(json, "text").error().code, ErrorCode::invalid_field);
    EXPECT_EQ(integer_field(json, "absent").error().code, ErrorCode::missing_field);
    EXPECT_EQ(integer_field(json, "absent").error().field, "absent");
}

TEST(WorkerResult, RoundTripsThroughJson) {
    WorkerResult result{{"job-1", Operation::division, 7, 2},
                        Outcome{3, 1},
                        {"division_worker", "w-1", "c3b-workers", "node-a"}};
    const auto json = nlohmann::json::parse(to_json_text(result));
    EXPECT_EQ(json["result"], 3);
    EXPECT_EQ(json["remainder"], 1);
    EXPECT_EQ(json["worker"], "division_worker");
    const auto parsed = worker_result_from_json(json).value();
    EXPECT_EQ(parsed.input.job_id, "job-1");
    EXPECT_EQ(parsed.outcome.value().remainder, 1);
    EXPECT_EQ(parsed.identity.cluster, "c3b-workers");
}

TEST(WorkerResult, CarriesDomainErrors) {
    WorkerResult result{{"job-2", Operation::division, 1, 0},
                        compute(Operation::division, 1, 0),
                        {"division_worker", "w-1", "local", "n"}};
    const auto json = nlohmann::json::parse(to_json_text(result));
    EXPECT_EQ(json["error"]["code"], "division_by_zero");
    const auto parsed = worker_result_from_json(json).value();
    ASSERT_FALSE(parsed.outcome);
    EXPECT_EQ(parsed.outcome.error().code, ErrorCode::division_by_zero);
}

TEST(JobRequest, RejectsMalformedMessages) {
    EXPECT_EQ(job_request_from_json(nlohmann::json::array()).error().code, ErrorCode::invalid_json);
    auto json = nlohmann::json::parse(
        R"({"job_id": "j1", "operation": "addition", "a": 1, "b": 2, "reply_to": "s1"})");
    EXPECT_TRUE(job_request_from_json(json));
    json["operation"] = "power";
    EXPECT_EQ(job_request_from_json(json).error().code, ErrorCode::unknown_operation);
    json["operation"] = "add";
    json["job_id"] = "has space";
    EXPECT_EQ(job_request_from_json(json).error().field, "job_id");
    json["job_id"] = "j1";
    json.erase("reply_to");
    EXPECT_EQ(job_request_from_json(json).error().field, "reply_to");
}

TEST(LogRecord, RoundTripsThroughJson) {
    LogRecord record;
    record.record_id = "r-1";
    record.input = {"job-3", Operation::multiplication, 6, 7};
    record.outcome = Outcome{42, std::nullopt};
    record.mechanism = Mechanism::kafka;
    record.identity = {"multiplication_worker", "w", "local", "n"};
    record.received_at = format_time(std::chrono::system_clock::now());
    record.completed_at = record.received_at;
    const auto parsed = log_record_from_json(nlohmann::json::parse(log_line(record))).value();
    EXPECT_EQ(parsed.record_id, "r-1");
    EXPECT_EQ(parsed.mechanism, Mechanism::kafka);
    EXPECT_EQ(parsed.outcome.value().result, 42);
}

TEST(LogRecord, AJobsRecordIdIsTheSameForEveryDeliveryAndFitsTheLimit) {
    const JobInput input{std::string(64, 'j'), Operation::multiplication, 6, 7};
    EXPECT_EQ(job_record_id(input), job_record_id(input));
    EXPECT_EQ(job_record_id({"j-1", Operation::division, 1, 2}), "j-1@division");
    EXPECT_NE(job_record_id({"j-1", Operation::division, 1, 2}),
              job_record_id({"j-1", Operation::addition, 1, 2}));
    LogRecord record;
    record.record_id = job_record_id(input);
    record.input = input;
    record.received_at = format_time(std::chrono::system_clock::now());
    record.completed_at = record.received_at;
    auto json = nlohmann::json::parse(log_line(record));
    EXPECT_EQ(log_record_from_json(json).value().record_id, record.record_id);
    json["record_id"] = std::string(129, 'r');
    EXPECT_EQ(log_record_from_json(json).error().field, "record_id");
}

TEST(LogRecord, LineIsTheCompactJsonOfTheRecord) {
    // Whatever the strings hold, the line is what a JSON library writes for the same object.
    LogRecord record;
    record.record_id = "r-2";
    record.input = {"job-4", Operation::division, -7, 2};
    record.mechanism = Mechanism::http;
    record.identity = {"division_worker", "w \"quoted\" \\ back", "tab\there", "é\x01\n"};
    record.received_at = "2026-11-28T15:04:05.123Z";
    record.completed_at = record.received_at;
    for (const auto& outcome :
         {Result<Outcome>(Outcome{-3, -1}), Result<Outcome>(Outcome{-4, std::nullopt}),
          Result<Outcome>(fail(ErrorCode::division_by_zero, "b must not be \"0\"", "b")),
          Result<Outcome>(fail(ErrorCode::overflow, "too big"))}) {
        record.outcome = outcome;
        const auto line = log_line(record);
        EXPECT_EQ(line, nlohmann::json::parse(line).dump());
        EXPECT_EQ(log_line(log_record_from_json(nlohmann::json::parse(line)).value()), line)
            << "a record read back is written the same, the error's field included";
        EXPECT_EQ(log_record_from_json(nlohmann::json::parse(line)).value().identity.node,
                  "é\x01\n");
    }
}

TEST(LogRecord, AllowsExactlyTheMembersItsLinesHold) {
    LogRecord record;
    record.record_id = "r-3";
    record.input = {"job-6", Operation::division, 7, 2};
    record.identity = {"division_worker", "w", "local", "n"};
    std::set<std::string> written;
    for (const auto& outcome : {Result<Outcome>(Outcome{3, 1}),
                                Result<Outcome>(fail(ErrorCode::overflow, "too big", "a"))}) {
        record.outcome = outcome;
        const auto line = nlohmann::json::parse(log_line(record));
        for (const auto& [name, value] : line.items()) {
            EXPECT_TRUE(is_log_record_member(name)) << name;
            written.insert(name);
        }
    }
    EXPECT_EQ(written.size(), 15u) << "every member, the result's and the error's";
    for (const auto* other : {"extra", "reply_to", "status", "worker_cluster", ""}) {
        EXPECT_FALSE(is_log_record_member(other)) << other;
    }
}

TEST(Messages, AreTheCompactJsonOfTheirObjects) {
    // Every byte below 0x20, quotes and backslashes: escaped as a JSON library escapes them.
    std::string awkward = "q\"b\\ é\x7f";
    for (int c = 0; c < 0x20; ++c) {
        awkward += static_cast<char>(c);
    }
    const WorkerIdentity identity{"division_worker", awkward, "c1", "n"};
    for (const auto& outcome :
         {Result<Outcome>(Outcome{-3, -1}), Result<Outcome>(Outcome{-4, std::nullopt}),
          Result<Outcome>(fail(ErrorCode::division_by_zero, "b must not be \"0\"", "b"))}) {
        const WorkerResult result{{"job-5", Operation::division, -7, 2}, outcome, identity};
        for (const auto& text : {to_json_text(result), to_json_text(ResultMessage{result, "s-1"}),
                                 to_json_text(JobRequestMessage{result.input, awkward})}) {
            EXPECT_EQ(text, nlohmann::json::parse(text).dump());
        }
        const auto read = result_message_from_json(
                              nlohmann::json::parse(to_json_text(ResultMessage{result, "s-1"})))
                              .value();
        EXPECT_EQ(read.result.identity.instance, awkward);
        EXPECT_EQ(read.reply_to, "s-1");
        EXPECT_EQ(read.result.outcome.has_value(), outcome.has_value());
    }
}

TEST(FormatTime, IsRfc3339WithMilliseconds) {
    const auto time =
        std::chrono::system_clock::time_point{std::chrono::milliseconds(1'700'000'000'123)};
    EXPECT_EQ(format_time(time), "2023-11-14T22:13:20.123Z");
}

TEST(NewId, IsUniqueAndValid) {
    const auto first = new_id("j-");
    EXPECT_EQ(first.size(), 18u);
    EXPECT_NE(first, new_id("j-"));
    EXPECT_TRUE(validate_job_id(first));
}

}  // namespace
}  // namespace calcmesh
