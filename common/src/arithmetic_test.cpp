#include "calcmesh/arithmetic.hpp"

#include <gtest/gtest.h>

#include <limits>

namespace calcmesh {
namespace {

constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
constexpr auto kMin = std::numeric_limits<std::int64_t>::min();

TEST(Compute, BasicOperations) {
    EXPECT_EQ(compute(Operation::addition, 2, 3).value().result, 5);
    EXPECT_EQ(compute(Operation::subtraction, 2, 3).value().result, -1);
    EXPECT_EQ(compute(Operation::multiplication, 6, 7).value().result, 42);
    const auto division = compute(Operation::division, 7, 2).value();
    EXPECT_EQ(division.result, 3);
    EXPECT_EQ(division.remainder, 1);
    EXPECT_FALSE(compute(Operation::addition, 1, 1).value().remainder.has_value());
}

TEST(Compute, DivisionTruncatesTowardZero) {
    const auto division = compute(Operation::division, -7, 2).value();
    EXPECT_EQ(division.result, -3);
    EXPECT_EQ(division.remainder, -1);
}

TEST(Compute, ReportsOverflowAtTheEdges) {
    EXPECT_EQ(compute(Operation::addition, kMax, 1).error().code, ErrorCode::overflow);
    EXPECT_EQ(compute(Operation::subtraction, kMin, 1).error().code, ErrorCode::overflow);
    EXPECT_EQ(compute(Operation::multiplication, kMax / 2 + 1, 2).error().code,
              ErrorCode::overflow);
    EXPECT_EQ(compute(Operation::division, kMin, -1).error().code, ErrorCode::overflow);
    EXPECT_EQ(compute(Operation::addition, kMax, 0).value().result, kMax);
    EXPECT_EQ(compute(Operation::multiplication, kMin, 1).value().result, kMin);
}

TEST(Compute, RejectsDivisionByZero) {
    const auto outcome = compute(Operation::division, 1, 0);
    ASSERT_FALSE(outcome);
    EXPECT_EQ(outcome.error().code, ErrorCode::division_by_zero);
    EXPECT_EQ(outcome.error().field, "b");
}

TEST(ParseOperation, AcceptsNamesAndShortForms) {
    EXPECT_EQ(parse_operation("multiplication").value(), Operation::multiplication);
    EXPECT_EQ(parse_operation("mul").value(), Operation::multiplication);
    EXPECT_EQ(parse_operation("div").value(), Operation::division);
    EXPECT_EQ(parse_operation("sub").value(), Operation::subtraction);
    EXPECT_EQ(parse_operation("add").value(), Operation::addition);
    const auto unknown = parse_operation("modulo");
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.error().code, ErrorCode::unknown_operation);
    EXPECT_NE(unknown.error().message.find("modulo"), std::string::npos);
}

TEST(ParseInteger, AcceptsTheWholeRange) {
    EXPECT_EQ(parse_integer("0", "a").value(), 0);
    EXPECT_EQ(parse_integer("-42", "a").value(), -42);
    EXPECT_EQ(parse_integer("9223372036854775807", "a").value(), kMax);
    EXPECT_EQ(parse_integer("-9223372036854775808", "a").value(), kMin);
}

TEST(ParseInteger, NamesTheFieldOnBadInput) {
    for (const char* text : {"", "1.5", "abc", "12x", " 1", "+1", "0x10"}) {
        const auto parsed = parse_integer(text, "b");
        ASSERT_FALSE(parsed) << text;
        EXPECT_EQ(parsed.error().code, ErrorCode::invalid_field) << text;
        EXPECT_EQ(parsed.error().field, "b");
    }
    const auto too_big = parse_integer("9223372036854775808", "a");
    ASSERT_FALSE(too_big);
    EXPECT_EQ(too_big.error().code, ErrorCode::out_of_range);
    EXPECT_EQ(too_big.error().field, "a");
}

}  // namespace
}  // namespace calcmesh
