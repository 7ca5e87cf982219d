// POST /submit bodies, JSON and forms, under each content type job_submitter tells apart.

#include <array>
#include <string>

#include "fuzz_check.hpp"
#include "submit_request.hpp"

namespace {

using namespace calcmesh;
using job_submitter::SubmitRequest;

/// The first byte of an input picks the content type; the rest is the body.
constexpr std::array<std::string_view, 5> kContentTypes = {
    "application/json", "application/x-www-form-urlencoded", "Application/JSON; charset=utf-8",
    "text/plain", ""};

Result<SubmitRequest> submit(std::string_view content_type, std::string body) {
    Request request;
    request.message.method(http::verb::post);
    request.message.target("/submit");
    if (!content_type.empty()) {
        request.message.set(http::field::content_type, content_type);
    }
    request.message.body() = std::move(body);
    return job_submitter::parse_submit_request(request);
}

std::string as_form(const SubmitRequest& submit) {
    return "operation=" + std::string(operation_name(submit.operation)) +
           "&a=" + std::to_string(submit.a) + "&b=" + std::to_string(submit.b) +
           "&mechanism=" + std::string(mechanism_name(submit.mechanism)) +
           "&wait=" + (submit.wait ? "true" : "false");
}

std::string as_json(const SubmitRequest& submit) {
    return nlohmann::json{{"operation", operation_name(submit.operation)},
                          {"a", submit.a},
                          {"b", submit.b},
                          {"mechanism", mechanism_name(submit.mechanism)},
                          {"wait", submit.wait}}
        .dump();
}

bool same(const SubmitRequest& x, const SubmitRequest& y) {
    return x.operation == y.operation && x.a == y.a && x.b == y.b && x.mechanism == y.mechanism &&
           x.wait == y.wait;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const auto parsed = submit(kContentTypes[data[0] % kContentTypes.size()],
                               std::string(fuzz::as_text(data + 1, size - 1)));
    if (!parsed) {
        fuzz::check_clear_error(parsed.error());
        return 0;
    }
    // What was accepted means the same written as a client may write it, either way.
    for (const auto& [type, text] :
         {std::pair{"application/x-www-form-urlencoded", as_form(parsed.value())},
          std::pair{"application/json", as_json(parsed.value())}}) {
        const auto again = submit(type, text);
        fuzz::check(again && same(again.value(), parsed.value()),
                    "an accepted submission reads otherwise when written again", text);
    }
    return 0;
}
