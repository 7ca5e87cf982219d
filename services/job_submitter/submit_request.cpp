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
        if (auto known = check_known(key); !known) {
            return known.error();
        }
    }
    SubmitRequest submit;
    auto operation = string_field(body, "operation");
    if (!operation) {
        return operation.error();
    }
    auto parsed_operation = parse_operation(operation.value());
    if (!parsed_operation) {
        return parsed_operation.error();
    }
    submit.operation = parsed_operation.value();
    auto a = integer_field(body, "a");
    if (!a) {
        return a.error();
    }
    auto b = integer_field(body, "b");
    if (!b) {
        return b.error();
    }
    submit.a = a.value();
    submit.b = b.value();
    if (body.contains("mechanism")) {
        auto mechanism = string_field(body, "mechanism");
        if (!mechanism) {
            return mechanism.error();
        }
        auto parsed_mechanism = parse_mechanism(mechanism.value());
        if (!parsed_mechanism) {
            return parsed_mechanism.error();
        }
        submit.mechanism = parsed_mechanism.value();
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
    auto fields = parse_form(text);
    if (!fields) {
        return fields.error();
    }
    nlohmann::json body = nlohmann::json::object();
    for (const auto& [name, value] : fields.value()) {
        if (auto known = check_known(name); !known) {
            return known.error();
        }
        if (body.contains(name)) {
            return fail(ErrorCode::invalid_field, "field '" + name + "' is given twice", name);
        }
        if (name == "a" || name == "b") {
            auto number = parse_integer(value, name);
            if (!number) {
                return number.error();
            }
            body[name] = number.value();
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
    if (type == "application/json") {
        auto body = parse_json_object(request.message.body());
        if (!body) {
            return body.error();
        }
        return from_json(body.value());
    }
    if (type == "application/x-www-form-urlencoded") {
        return from_form(request.message.body());
    }
    return fail(ErrorCode::unsupported_media_type,
                "POST /submit takes application/json or application/x-www-form-urlencoded, got " +
                    (type.empty() ? std::string("no content type") : "'" + type + "'"));
}

}  // namespace calcmesh::job_submitter
