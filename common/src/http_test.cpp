#include "calcmesh/http.hpp"

#include <gtest/gtest.h>

namespace calcmesh {
namespace {

TEST(ParseForm, DecodesEscapesAndPlus) {
    const auto fields = parse_form("operation=mul&a=-6&b=7&note=a+b%21&flag").value();
    ASSERT_EQ(fields.size(), 5u);
    EXPECT_EQ(fields[1].second, "-6");
    EXPECT_EQ(fields[3].second, "a b!");
    EXPECT_EQ(fields[4].first, "flag");
    EXPECT_EQ(fields[4].second, "");
}

TEST(ParseForm, RejectsBrokenEscapes) {
    EXPECT_FALSE(parse_form("a=%4"));
    EXPECT_FALSE(parse_form("a=%zz"));
    EXPECT_FALSE(parse_form("a=%"));
}

TEST(ParseForm, ABrokenEscapeNamesItsField) {
    const auto in_value = parse_form("operation=add&a=%4g&b=2");
    ASSERT_FALSE(in_value);
    EXPECT_EQ(in_value.error().code, ErrorCode::invalid_field);
    EXPECT_EQ(in_value.error().field, "a");
    EXPECT_NE(in_value.error().message.find("value of field 'a'"), std::string::npos)
        << in_value.error().message;
    const auto in_name = parse_form("operation=add&b%=2");
    ASSERT_FALSE(in_name);
    EXPECT_NE(in_name.error().message.find("field name 'b%'"), std::string::npos)
        << in_name.error().message;
}

TEST(ParseUrl, SplitsHostPortAndPath) {
    const auto url = parse_url("http://addition-worker.calcmesh:8091/api/").value();
    EXPECT_EQ(url.host, "addition-worker.calcmesh");
    EXPECT_EQ(url.port, "8091");
    EXPECT_EQ(url.base_path, "/api");
    EXPECT_EQ(parse_url("http://localhost").value().port, "80");
    EXPECT_FALSE(parse_url("https://x:1"));
    EXPECT_FALSE(parse_url("http://:80"));
    EXPECT_FALSE(parse_url("http://x:port"));
}

TEST(UrlEncode, EscapesReservedCharacters) {
    EXPECT_EQ(url_encode("a b&c=d"), "a%20b%26c%3Dd");
    EXPECT_EQ(url_encode("job-1_x.y~"), "job-1_x.y~");
}

TEST(ParseJsonObject, RejectsNonObjects) {
    EXPECT_TRUE(parse_json_object(R"({"a": 1})"));
    EXPECT_EQ(parse_json_object("[1]").error().code, ErrorCode::invalid_json);
    EXPECT_EQ(parse_json_object("{").error().code, ErrorCode::invalid_json);
    // nlohmann alone would read the object and ignore what follows a NUL byte.
    EXPECT_EQ(parse_json_object(std::string_view("{\"a\": 1}\0x", 10)).error().code,
              ErrorCode::invalid_json);
}

TEST(ErrorMapping, EveryCodeHasAStatusAndName) {
    for (int code = 0; code <= static_cast<int>(ErrorCode::internal); ++code) {
        const auto error_code = static_cast<ErrorCode>(code);
        EXPECT_GE(http_status(error_code), 400u);
        EXPECT_FALSE(error_code_name(error_code).empty());
    }
    EXPECT_EQ(http_status(ErrorCode::upstream_timeout), 504u);
    EXPECT_EQ(http_status(ErrorCode::payload_too_large), 413u);
}

TEST(ErrorMapping, AnErrorBodyReadsBackAsItWasWritten) {
    const auto written = error_json({ErrorCode::missing_field, "b is required", "b"}).dump();
    const auto read = read_error_body(written);
    ASSERT_TRUE(read);
    EXPECT_EQ(read->code, "missing_field");
    EXPECT_EQ(read->message, "b is required");
    EXPECT_EQ(read->field, "b");
    // A code this version does not know is kept as sent.
    EXPECT_EQ(read_error_body(R"({"error":{"code":"newer","message":"m"}})")->code, "newer");
    for (const auto* body : {"", "not json", "[]", R"({"error":"text"})", R"({"result":3})"}) {
        EXPECT_FALSE(read_error_body(body)) << body;
    }
}

TEST(ErrorMapping, OnlyRequestsRefusedBeforeAnyWorkAreToldToRetry) {
    for (int code = 0; code <= static_cast<int>(ErrorCode::internal); ++code) {
        const auto error_code = static_cast<ErrorCode>(code);
        const auto response = error_response({error_code, "refused"});
        const bool retry =
            error_code == ErrorCode::overloaded || error_code == ErrorCode::log_backlog;
        EXPECT_EQ(response[http::field::retry_after], retry ? "1" : "")
            << error_code_name(error_code);
    }
}

}  // namespace
}  // namespace calcmesh
