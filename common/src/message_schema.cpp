#include "calcmesh/message_schema.hpp"

#include <cmath>
#include <limits>

namespace calcmesh {

Result<std::int64_t> integer_field(const nlohmann::json& object, std::string_view field) {
    const auto it = object.find(field);
    if (it == object.end()) {
        return fail(ErrorCode::missing_field, "missing field '" + std::string(field) + "'",
                    std::string(field));
    }
    if (it->is_number_integer()) {
        if (it->is_number_unsigned() &&
            it->get<std::uint64_t>() >
                static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
            return fail(ErrorCode::out_of_range,
                        std::string(field) + " is outside the 64-bit signed integer range",
                        std::string(field));
        }
        return it->get<std::int64_t>();
    }
    if (it->is_number_float()) {
        const double value = it->get<double>();
        // JSON integers too large for 64 bits arrive here as doubles.
        if (std::isfinite(value) && std::trunc(value) == value &&
            (value >= 9223372036854775808.0 || value < -9223372036854775808.0)) {
            return fail(ErrorCode::out_of_range,
                        std::string(field) + " is outside the 64-bit signed integer range",
                        std::string(field));
        }
        return fail(ErrorCode::invalid_field,
                    std::string(field) + " must be an integer, got " + it->dump(),
                    std::string(field));
    }
    return fail(ErrorCode::invalid_field,
                std::string(field) + " must be an integer, got " + std::string(it->type_name()),
                std::string(field));
}

Result<std::string> string_field(const nlohmann::json& object, std::string_view field) {
    const auto it = object.find(field);
    if (it == object.end()) {
        return fail(ErrorCode::missing_field, "missing field '" + std::string(field) + "'",
                    std::string(field));
    }
    if (!it->is_string()) {
        return fail(ErrorCode::invalid_field,
                    std::string(field) + " must be a string, got " + std::string(it->type_name()),
                    std::string(field));
    }
    return it->get<std::string>();
}

std::optional<Error> schema::reported_error(const nlohmann::json& member) {
    if (!member.is_object()) {
        return std::nullopt;
    }
    const auto code = string_field(member, "code");
    const auto message = string_field(member, "message");
    if (!code || !message) {
        return std::nullopt;
    }
    // The field an error names, if any, travels on with it.
    const auto field = member.find("field");
    return Error{parse_error_code(code.value()).value_or(ErrorCode::internal), message.value(),
                 field != member.end() && field->is_string() ? field->get<std::string>() : ""};
}

}  // namespace calcmesh
