#include "calcmesh/arithmetic.hpp"

#include <charconv>
#include <limits>
#include <string>
#include <system_error>

namespace calcmesh {

std::string_view operation_name(Operation operation) {
    switch (operation) {
        case Operation::addition:
            return "addition";
        case Operation::subtraction:
            return "subtraction";
        case Operation::multiplication:
            return "multiplication";
        case Operation::division:
            return "division";
    }
    return "addition";
}

Result<Operation> parse_operation(std::string_view text) {
    struct Alias {
        std::string_view name;
        Operation operation;
    };
    static constexpr std::array<Alias, 8> kAliases = {{
        {"addition", Operation::addition},
        {"add", Operation::addition},
        {"subtraction", Operation::subtraction},
        {"sub", Operation::subtraction},
        {"multiplication", Operation::multiplication},
        {"mul", Operation::multiplication},
        {"division", Operation::division},
        {"div", Operation::division},
    }};
    for (const auto& alias : kAliases) {
        if (alias.name == text) {
            return alias.operation;
        }
    }
    return fail(ErrorCode::unknown_operation,
                "unknown operation '" + std::string(text) +
                    "': expected addition, subtraction, multiplication or division "
                    "(or add, sub, mul, div)",
                "operation");
}

Result<Outcome> compute(Operation operation, std::int64_t a, std::int64_t b) {
    std::int64_t result = 0;
    bool overflowed = false;
    switch (operation) {
        case Operation::addition:
            overflowed = __builtin_add_overflow(a, b, &result);
            break;
        case Operation::subtraction:
            overflowed = __builtin_sub_overflow(a, b, &result);
            break;
        case Operation::multiplication:
            overflowed = __builtin_mul_overflow(a, b, &result);
            break;
        case Operation::division:
            if (b == 0) {
                return fail(ErrorCode::division_by_zero, "division by zero: b must not be 0", "b");
            }
            if (a == std::numeric_limits<std::int64_t>::min() && b == -1) {
                overflowed = true;
                break;
            }
            return Outcome{a / b, a % b};
    }
    if (overflowed) {
        return fail(ErrorCode::overflow, "the " + std::string(operation_name(operation)) + " of " +
                                             std::to_string(a) + " and " + std::to_string(b) +
                                             " does not fit in a 64-bit signed integer");
    }
    return Outcome{result, std::nullopt};
}

Result<std::int64_t> parse_integer(std::string_view text, std::string_view field) {
    std::int64_t value = 0;
    const char* end = text.data() + text.size();
    // NOLINTNEXTLINE(bugprone-suspicious-stringview-data-usage): bounded by `end`
    auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (ec == std::errc::result_out_of_range) {
        return fail(ErrorCode::out_of_range,
                    std::string(field) + " is outside the 64-bit signed integer range",
                    std::string(field));
    }
    if (text.empty() || ec != std::errc() || ptr != end) {
        return fail(ErrorCode::invalid_field,
                    std::string(field) + " must be an integer, got '" + std::string(text) + "'",
                    std::string(field));
    }
    return value;
}

}  // namespace calcmesh
