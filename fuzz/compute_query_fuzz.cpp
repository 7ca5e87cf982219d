// GET /compute request targets: the query string decoded as the HTTP server does, then read as
// a worker reads it.

#include <string>

#include "compute_query.hpp"
#include "fuzz_check.hpp"

namespace {

using namespace calcmesh;

/// The request as the server hands it to a handler, or the error of its malformed query.
Result<Request> request_for(std::string_view target) {
    Request request;
    const auto question = target.find('?');
    request.path = std::string(target.substr(0, question));
    if (question != std::string_view::npos) {
        BOOST_OUTCOME_TRY(query, parse_form(target.substr(question + 1)));
        request.query = std::move(query);
    }
    return request;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto request = request_for(fuzz::as_text(data, size));
    if (!request) {
        fuzz::check_clear_error(request.error());
        return 0;
    }
    const auto input = worker::parse_compute_query(request.value(), Operation::division);
    if (!input) {
        fuzz::check_clear_error(input.error());
        return 0;
    }
    fuzz::check(validate_job_id(input.value().job_id).has_value(), "an accepted invalid job id",
                input.value().job_id);
    // The accepted job, asked for again as job_submitter asks for it, is the same job.
    const std::string again = "/compute?a=" + std::to_string(input.value().a) +
                              "&b=" + std::to_string(input.value().b) +
                              "&job_id=" + url_encode(input.value().job_id);
    const auto reread =
        worker::parse_compute_query(request_for(again).value(), Operation::division);
    fuzz::check(reread && reread.value().a == input.value().a &&
                    reread.value().b == input.value().b &&
                    reread.value().job_id == input.value().job_id,
                "an accepted query reads otherwise when written again", again);
    return 0;
}
