#include "submit_request.hpp"

#include <gtest/gtest.h>

namespace calcmesh::job_submitter {
namespace {

Request request(const std::string& content_type, std::string body) {
    Request request;
    request.message.method(http::verb::post);
    if (!content_type.empty()) {
        request.message.set(http::field::content_type, content_type);
    }
    request.message.body() = std::move(body);
    return request;
}

Result<SubmitRequest> parse(const std::string& content_type, std::string body) {
    return parse_submit_request(request(content_type, std::move(body)));
}

TEST(SubmitRequest, ReadsJson) {
    const auto submit =
        parse("application/json; charset=utf-8",
              R"({"operation":"division","a":7,"b":2,"mechanism":"kafka","wait":false})")
            .value();
    EXPECT_EQ(submit.operation, Operation::division);
    EXPECT_EQ(submit.a, 7);
    EXPECT_EQ(submit.b, 2);
    EXPECT_EQ(submit.mechanism, Mechanism::kafka);
    EXPECT_FALSE(submit.wait);
}

TEST(SubmitRequest, ReadsFormsAndShortNames) {
    const auto submit =
        parse("application/x-www-form-urlencoded", "operation=mul&a=-6&b=7&mechanism=http").value();
    EXPECT_EQ(submit.operation, Operation::multiplication);
    EXPECT_EQ(submit.a, -6);
    EXPECT_TRUE(submit.wait);
}

TEST(SubmitRequest, ReadsJsonSentWithTheFormContentType) {
    const auto submit = parse("application/x-www-form-urlencoded",
                              R"( {"operation":"sub","a":5,"b":7,"mechanism":"http"})")
                            .value();
    EXPECT_EQ(submit.operation, Operation::subtraction);
    EXPECT_EQ(submit.b, 7);
}

TEST(SubmitRequest, MechanismDefaultsToHttp) {
    EXPECT_EQ(parse("application/json", R"({"operation":"add","a":1,"b":2})").value().mechanism,
              Mechanism::http);
}

TEST(SubmitRequest, NamesWhatIsWrong) {
    struct Case {
        std::string content_type;
        std::string body;
        ErrorCode code;
        std::string field;
    };
    const std::vector<Case> cases = {
        {"application/json", "{", ErrorCode::invalid_json, ""},
        {"application/json", "[1,2]", ErrorCode::invalid_json, ""},
        {"text/plain", "x", ErrorCode::unsupported_media_type, ""},
        {"", "", ErrorCode::unsupported_media_type, ""},
        {"application/json", R"({"a":1,"b":2})", ErrorCode::missing_field, "operation"},
        {"application/json", R"({"operation":"add","b":2})", ErrorCode::missing_field, "a"},
        {"application/json", R"({"operation":"add","a":"1","b":2})", ErrorCode::invalid_field, "a"},
        {"application/json", R"({"operation":"add","a":1.5,"b":2})", ErrorCode::invalid_field, "a"},
        {"application/json", R"({"operation":"add","a":1,"b":9223372036854775808})",
         ErrorCode::out_of_range, "b"},
        {"application/json", R"({"operation":"pow","a":1,"b":2})", ErrorCode::unknown_operation,
         "operation"},
        {"application/json", R"({"operation":"add","a":1,"b":2,"mechanism":"grpc"})",
         ErrorCode::unknown_mechanism, "mechanism"},
        {"application/json", R"({"operation":"add","a":1,"b":2,"mechanism":7})",
         ErrorCode::invalid_field, "mechanism"},
        {"application/json", R"({"operation":"add","a":1,"b":2,"extra":1})",
         ErrorCode::unknown_field, "extra"},
        {"application/json", R"({"operation":"add","a":1,"b":2,"wait":"no"})",
         ErrorCode::invalid_field, "wait"},
        {"application/x-www-form-urlencoded", "operation=add&a=x&b=2", ErrorCode::invalid_field,
         "a"},
        {"application/x-www-form-urlencoded", "operation=add&a=1&a=2&b=2", ErrorCode::invalid_field,
         "a"},
        {"application/x-www-form-urlencoded", "operation=add&a=99999999999999999999&b=2",
         ErrorCode::out_of_range, "a"},
    };
    for (const auto& c : cases) {
        const auto result = parse(c.content_type, c.body);
        ASSERT_FALSE(result) << c.body;
        EXPECT_EQ(result.error().code, c.code) << c.body << ": " << result.error().message;
        EXPECT_EQ(result.error().field, c.field) << c.body;
    }
}

}  // namespace
}  // namespace calcmesh::job_submitter
