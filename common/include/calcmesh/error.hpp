#pragma once

#include <boost/outcome/result.hpp>
#include <boost/outcome/try.hpp>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace calcmesh {

/// Every failure a request path can report. Each maps to exactly one HTTP status in
/// `http_status`, and to a stable snake_case name in `error_code_name`, which clients see.
enum class ErrorCode {
    invalid_json,            ///< The body is not JSON, or not a JSON object.
    unsupported_media_type,  ///< The content type is neither JSON nor a form.
    missing_field,           ///< A required field or query parameter is absent.
    invalid_field,           ///< A field has the wrong type or a malformed value.
    unknown_field,           ///< A field the API does not define.
    out_of_range,            ///< An integer outside the 64-bit signed range.
    overflow,                ///< The result does not fit in 64 bits.
    division_by_zero,
    unknown_operation,
    unknown_mechanism,
    payload_too_large,  ///< The body is over the size limit.
    headers_too_large,  ///< The request line and headers are over the size limit.
    not_found,          ///< Unknown route or unknown resource.
    method_not_allowed,
    upstream_unavailable,   ///< A dependency refused or dropped the connection.
    upstream_timeout,       ///< A dependency did not answer before the deadline.
    upstream_bad_response,  ///< A dependency answered with something unusable.
    broker_unavailable,     ///< The Kafka broker cannot be reached.
    job_timeout,            ///< No result for an asynchronous job before the deadline.
    not_ready,              ///< The service is starting or stopping.
    overloaded,             ///< Too much work in flight: retry shortly.
    storage_failure,        ///< The service could not write durably.
    log_backlog,            ///< A worker holds as many unsent log records as it may: retry shortly.
    internal,
};

/// A domain error: what went wrong (code), for whom (message, naming the field or upstream),
/// and optionally which request field was at fault.
struct Error {
    ErrorCode code;
    std::string message;
    std::string field;  ///< Empty unless one input field is to blame.
};

/// Result of an operation that may fail with a domain error. Accessing the value of a failed
/// result terminates: callers check `has_value()` first.
template <class T>
using Result = boost::outcome_v2::basic_result<T, Error, boost::outcome_v2::policy::terminate>;

// On request paths, `BOOST_OUTCOME_TRY(value, expression)` unwraps a Result or returns its
// error, and `BOOST_OUTCOME_TRYV(expression)` does the same for Result<void>.

/// Shorthand for a failed result, usable where any `Result<T>` is expected.
inline auto fail(ErrorCode code, std::string message, std::string field = {}) {
    return boost::outcome_v2::failure(Error{code, std::move(message), std::move(field)});
}

/// The one mapping from domain errors to HTTP status codes.
unsigned http_status(ErrorCode code);

/// Whether the request was refused before any work, so the client may simply send it again
/// shortly: such answers carry `Retry-After`.
bool refused_before_work(ErrorCode code);

/// Stable wire name of an error code, e.g. "division_by_zero".
std::string_view error_code_name(ErrorCode code);
/// The code with that wire name, if any.
std::optional<ErrorCode> parse_error_code(std::string_view name);

/// The error as the JSON body every service sends: {"error": {"code", "message"[, "field"]}}.
nlohmann::json error_json(const Error& error);

/// An error body of another service's answer, read back. The code stays text: a newer peer may
/// send one this version does not know.
struct ErrorBody {
    std::string code;
    std::string message;
    std::string field;
};
/// The error in an answer's body, if the body is one as error_json writes it.
std::optional<ErrorBody> read_error_body(std::string_view body);

}  // namespace calcmesh
