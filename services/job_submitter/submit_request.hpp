#pragma once

#include <cstdint>

#include "calcmesh/arithmetic.hpp"
#include "calcmesh/http.hpp"
#include "calcmesh/job.hpp"

namespace calcmesh::job_submitter {

/// A job as a client asks for it at `POST /submit`.
struct SubmitRequest {
    Operation operation = Operation::addition;
    std::int64_t a = 0;
    std::int64_t b = 0;
    Mechanism mechanism = Mechanism::http;
    bool wait = true;  ///< false: answer 202 at once and let the client poll /jobs/<id>
};

/// Reads a submission from a JSON object or a form-encoded body with the fields operation,
/// a, b, mechanism (default http) and wait (default true). Any other field, a missing or
/// mistyped field, or another content type is an error naming the field. A JSON object sent
/// with the form content type (what `curl -d` does by default) is read as JSON.
Result<SubmitRequest> parse_submit_request(const Request& request);

}  // namespace calcmesh::job_submitter
