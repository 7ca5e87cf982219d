#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "calcmesh/error.hpp"

namespace calcmesh {

/// The four operations of the case study, one per worker.
enum class Operation { addition, subtraction, multiplication, division };

inline constexpr std::array<Operation, 4> kAllOperations = {
    Operation::addition, Operation::subtraction, Operation::multiplication, Operation::division};

/// Canonical name: "addition", "subtraction", "multiplication" or "division".
std::string_view operation_name(Operation operation);

/// Accepts the canonical names and the short forms add, sub, mul and div.
Result<Operation> parse_operation(std::string_view text);

/// What a worker computes. `remainder` is set for division only.
struct Outcome {
    std::int64_t result = 0;
    std::optional<std::int64_t> remainder;
};

/// Computes `a <op> b` with 64-bit signed checked arithmetic. Division truncates toward zero
/// and yields the remainder with the sign of `a`. Fails with `overflow` when the result does not
/// fit (including INT64_MIN / -1) and with `division_by_zero` when b is 0.
Result<Outcome> compute(Operation operation, std::int64_t a, std::int64_t b);

/// Parses a whole string as a decimal 64-bit signed integer (optional leading '-').
/// Fails with `invalid_field` or `out_of_range`, naming `field`.
Result<std::int64_t> parse_integer(std::string_view text, std::string_view field);

}  // namespace calcmesh
