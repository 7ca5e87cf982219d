#include "compute_query.hpp"

namespace calcmesh::worker {

Result<JobInput> parse_compute_query(const Request& request, Operation operation) {
    JobInput input;
    input.operation = operation;
    for (const auto& [name, value] : request.query) {
        if (name != "a" && name != "b" && name != "job_id") {
            return fail(
                ErrorCode::unknown_field,
                "unknown query parameter '" + name + "': expected a, b and optionally job_id",
                name);
        }
    }
    for (auto [name, target] : {std::pair{"a", &input.a}, std::pair{"b", &input.b}}) {
        const auto text = request.query_param(name);
        if (!text) {
            return fail(ErrorCode::missing_field,
                        std::string("missing query parameter '") + name + "'", name);
        }
        BOOST_OUTCOME_TRY(value, parse_integer(*text, name));
        *target = value;
    }
    if (const auto job_id = request.query_param("job_id")) {
        BOOST_OUTCOME_TRY(valid, validate_job_id(*job_id));
        input.job_id = std::move(valid);
    } else {
        input.job_id = new_id("w-");
    }
    return input;
}

}  // namespace calcmesh::worker
