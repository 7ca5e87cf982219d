#pragma once

#include "calcmesh/arithmetic.hpp"
#include "calcmesh/http.hpp"
#include "calcmesh/job.hpp"

namespace calcmesh::worker {

/// Reads the query of `GET /compute` for a worker of `operation`: a and b, decimal integers of
/// the 64-bit signed range, and optionally job_id (a fresh id when absent). A missing or
/// malformed parameter, or any other one, is an error naming it.
Result<JobInput> parse_compute_query(const Request& request, Operation operation);

}  // namespace calcmesh::worker
