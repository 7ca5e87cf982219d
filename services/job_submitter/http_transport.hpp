#pragma once

#include <array>

#include "calcmesh/http.hpp"
#include "calcmesh/service.hpp"
#include "transport.hpp"

namespace calcmesh::job_submitter {

/// Calls the worker's `GET /compute` over keep-alive HTTP.
class HttpTransport final : public JobTransport {
  public:
    HttpTransport(Runtime& runtime, std::array<Url, 4> workers);

    Task<Result<WorkerResult>> run(JobInput input,
                                   std::chrono::steady_clock::time_point deadline) override;

  private:
    Runtime& runtime_;
    std::array<Url, 4> workers_;
};

}  // namespace calcmesh::job_submitter
