#include "submit_request.hpp"

#include <algorithm>
#include <array>

namespace calcmesh::job_submitter {

namespace {

constexpr std::array<std::string_view, 5> kFields = {"operation", "a", "b", "mechanism", "wait"};

Result<void> check_known(std::string_view name) {
    if (std::find(kFields.begin(), kFields.end(), name) == kFields.end()) {
        return fail(ErrorCode::unknown_field,
                    "unknown field '" + std::string(name) +
                        "': expected operation, a, b, mechanism and optionally wait",
                    std::string(name));
    }
    return boost::outcome_v2::success();
}

Result<SubmitRequest> from_json(const nlohmann::json& body) {
    for (const auto& [key, value] : body.items()) {
        BOOST_OUTCOME_TRYV(check_known(key));
    }
    SubmitRequest submit;
    BOOST_OUTCOME_TRY(operation, string_field(body, "operation"));
    BOOST_OUTCOME_TRY(parsed_operation, parse_operation(operation));
    BOOST_OUTCOME_TRY(a, integer_field(body, "a"));
    BOOST_OUTCOME_TRY(b, integer_field(body, "b"));
    submit.operation = parsed_operation;
    submit.a = a;
    submit.b = b;
    if (body.contains("mechanism")) {
        BOOST_OUTCOME_TRY(mechanism, string_field(body, "mechanism"));
        BOOST_OUTCOME_TRY(parsed_mechanism, parse_mechanism(mechanism));
        submit.mechanism = parsed_mechanism;
    }
    if (const auto wait = body.find("wait"); wait != body.end()) {
        if (!wait->is_boolean()) {
            return fail(ErrorCode::invalid_field,
                        std::string("wait must be true or false, got ") + wait->type_name(),
                        "wait");
        }
        submit.wait = wait->get<bool>();
    }
    return submit;
}

Result<SubmitRequest> from_form(std::string_view text) {
    BOOST_OUTCOME_TRY(fields, parse_form(text));
    nlohmann::json body = nlohmann::json::object();
    for (const auto& [name, value] : fields) {
        BOOST_OUTCOME_TRYV(check_known(name));
        if (body.contains(name)) {
            return fail(ErrorCode::invalid_field, "field '" + name + "' is given twice", name);
        }
        if (name == "a" || name == "b") {
            BOOST_OUTCOME_TRY(number, parse_integer(value, name));
            body[name] = number;
        } else if (name == "wait") {
            if (value != "true" && value != "false") {
                return fail(ErrorCode::invalid_field, "wait must be true or false", "wait");
            }
            body[name] = value == "true";
        } else {
            body[name] = value;
        }
    }
    return from_json(body);
}

}  // namespace

Result<SubmitRequest> parse_submit_request(const Request& request) {
    const auto type = request.media_type();
    const auto& text = request.message.body();
    // `curl -d '{...}'` labels JSON as a form; a form body never starts with '{'.
    const bool json_as_form = type == "application/x-www-form-urlencoded" &&
                              text.find_first_not_of(" \t\r\n") != std::string::npos &&
                              text[text.find_first_not_of(" \t\r\n")] == '{';
    if (type == "application/json" || json_as_form) {
        BOOST_OUTCOME_TRY(body, parse_json_object(text));
        return from_json(body);
    }
    if (type == "application/x-www-form-urlencoded") {
        return from_form(text);
    }
    return fail(ErrorCode::unsupported_media_type,
                "POST /submit takes application/json or application/x-www-form-urlencoded, got " +
                    (type.empty() ? std::string("no content type") : "'" + type + "'"));
}

}  // namespace calcmesh::job_submitter
