#include "calcmesh/config.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace calcmesh {
namespace {

/// Parses `args` for one key `count` in [1, 100]: the exit code (if the program should stop),
/// what it printed on stderr, and the value it left.
struct Parsed {
    std::optional<int> exit_code;
    std::string errors;
    unsigned count;
};

Parsed parse_count(std::vector<std::string> args) {
    unsigned count = 7;
    ConfigParser parser("test", "a test");
    parser.add("count", count, "How many")->check(whole_number(1u, 100u));
    args.insert(args.begin(), "test");
    std::vector<char*> argv;
    argv.reserve(args.size());
    for (auto& arg : args) {
        argv.push_back(arg.data());
    }
    ::testing::internal::CaptureStderr();
    const auto exit_code = parser.parse(static_cast<int>(argv.size()), argv.data());
    return {exit_code, ::testing::internal::GetCapturedStderr(), count};
}

TEST(WholeNumber, AcceptsTheRangeInclusive) {
    for (const std::string text : {"1", "42", "100"}) {
        const auto parsed = parse_count({"--count", text});
        EXPECT_FALSE(parsed.exit_code) << text << ": " << parsed.errors;
        EXPECT_EQ(parsed.count, std::stoul(text));
    }
}

TEST(WholeNumber, RefusesAnythingElseNamingTheKeyTheRangeAndTheText) {
    for (const std::string text :
         {"abc", "-5", "1.5", "0", "101", "", " 5", "5x", "99999999999999999999999"}) {
        const auto parsed = parse_count({"--count", text});
        ASSERT_TRUE(parsed.exit_code) << text;
        EXPECT_NE(*parsed.exit_code, 0) << text;
        EXPECT_NE(parsed.errors.find("--count: expected a whole number from 1 to 100, got '" +
                                     text + "'"),
                  std::string::npos)
            << parsed.errors;
        EXPECT_EQ(parsed.count, 7u) << "a refused value changes nothing";
    }
}

TEST(WholeNumber, ChecksTheEnvironmentVariableToo) {
    ASSERT_EQ(::setenv("CALCMESH_COUNT", "lots", 1), 0);
    const auto parsed = parse_count({});
    ::unsetenv("CALCMESH_COUNT");
    ASSERT_TRUE(parsed.exit_code);
    EXPECT_NE(parsed.errors.find("expected a whole number from 1 to 100, got 'lots'"),
              std::string::npos)
        << parsed.errors;
}

TEST(WholeNumber, ReachesTheLargestValueOfTheTypeByDefault) {
    std::string largest = std::to_string(std::numeric_limits<std::size_t>::max());
    auto check = whole_number(std::size_t{1});
    EXPECT_EQ(check(largest), "");
    std::string zero = "0";
    EXPECT_NE(check(zero).find("from 1 to " + largest), std::string::npos);
}

}  // namespace
}  // namespace calcmesh
