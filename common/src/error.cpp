#include "calcmesh/error.hpp"

#include <nlohmann/json.hpp>

#include "calcmesh/json_reader.hpp"

namespace calcmesh {

unsigned http_status(ErrorCode code) {
    switch (code) {
        case ErrorCode::invalid_json:
        case ErrorCode::missing_field:
        case ErrorCode::invalid_field:
        case ErrorCode::unknown_field:
        case ErrorCode::out_of_range:
        case ErrorCode::unknown_operation:
        case ErrorCode::unknown_mechanism:
        case ErrorCode::overflow:
        case ErrorCode::division_by_zero:
            return 400;
        case ErrorCode::not_found:
            return 404;
        case ErrorCode::method_not_allowed:
            return 405;
        case ErrorCode::payload_too_large:
            return 413;
        case ErrorCode::headers_too_large:
            return 431;
        case ErrorCode::unsupported_media_type:
            return 415;
        case ErrorCode::upstream_unavailable:
        case ErrorCode::upstream_bad_response:
            return 502;
        case ErrorCode::broker_unavailable:
        case ErrorCode::not_ready:
        case ErrorCode::overloaded:
        case ErrorCode::storage_failure:
        case ErrorCode::log_backlog:
            return 503;
        case ErrorCode::upstream_timeout:
        case ErrorCode::job_timeout:
            return 504;
        case ErrorCode::internal:
            return 500;
    }
    return 500;
}

bool refused_before_work(ErrorCode code) {
    return code == ErrorCode::overloaded || code == ErrorCode::log_backlog;
}

std::string_view error_code_name(ErrorCode code) {
    // `internal` must stay the last code: parse_error_code and the tests iterate up to it.
    switch (code) {
        case ErrorCode::invalid_json:
            return "invalid_json";
        case ErrorCode::unsupported_media_type:
            return "unsupported_media_type";
        case ErrorCode::missing_field:
            return "missing_field";
        case ErrorCode::invalid_field:
            return "invalid_field";
        case ErrorCode::unknown_field:
            return "unknown_field";
        case ErrorCode::out_of_range:
            return "out_of_range";
        case ErrorCode::overflow:
            return "overflow";
        case ErrorCode::division_by_zero:
            return "division_by_zero";
        case ErrorCode::unknown_operation:
            return "unknown_operation";
        case ErrorCode::unknown_mechanism:
            return "unknown_mechanism";
        case ErrorCode::payload_too_large:
            return "payload_too_large";
        case ErrorCode::headers_too_large:
            return "headers_too_large";
        case ErrorCode::not_found:
            return "not_found";
        case ErrorCode::method_not_allowed:
            return "method_not_allowed";
        case ErrorCode::upstream_unavailable:
            return "upstream_unavailable";
        case ErrorCode::upstream_timeout:
            return "upstream_timeout";
        case ErrorCode::upstream_bad_response:
            return "upstream_bad_response";
        case ErrorCode::broker_unavailable:
            return "broker_unavailable";
        case ErrorCode::job_timeout:
            return "job_timeout";
        case ErrorCode::not_ready:
            return "not_ready";
        case ErrorCode::overloaded:
            return "overloaded";
        case ErrorCode::storage_failure:
            return "storage_failure";
        case ErrorCode::log_backlog:
            return "log_backlog";
        case ErrorCode::internal:
            return "internal";
    }
    return "internal";
}

std::optional<ErrorCode> parse_error_code(std::string_view name) {
    for (int code = 0; code <= static_cast<int>(ErrorCode::internal); ++code) {
        if (error_code_name(static_cast<ErrorCode>(code)) == name) {
            return static_cast<ErrorCode>(code);
        }
    }
    return std::nullopt;
}

nlohmann::json error_json(const Error& error) {
    nlohmann::json body = {{"code", error_code_name(error.code)}, {"message", error.message}};
    if (!error.field.empty()) {
        body["field"] = error.field;
    }
    return {{"error", std::move(body)}};
}

std::optional<ErrorBody> read_error_body(std::string_view body) {
    const auto json = parse_json_text(body);
    if (!json.is_object() || !json.contains("error") || !json["error"].is_object()) {
        return std::nullopt;
    }
    const auto& error = json["error"];
    const auto text = [&error](const char* key) {
        return error.contains(key) && error[key].is_string() ? error[key].get<std::string>()
                                                             : std::string();
    };
    return ErrorBody{text("code"), text("message"), text("field")};
}

}  // namespace calcmesh
