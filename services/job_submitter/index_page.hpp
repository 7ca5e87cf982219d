#pragma once

#include <string_view>

namespace calcmesh::job_submitter {

/// The page at `GET /`: a form that submits jobs and shows the answers. Self-contained
/// (inline style and script), so it works without access to the internet.
extern const std::string_view kIndexPage;

}  // namespace calcmesh::job_submitter
