#pragma once

#include <chrono>
#include <memory>

#include "calcmesh/asio.hpp"
#include "calcmesh/job.hpp"

namespace calcmesh::job_submitter {

/// One way of having a worker compute a job: over HTTP or through Kafka.
class JobTransport {
  public:
    virtual ~JobTransport() = default;

    /// Has the operation's worker compute `input` before `deadline`. A failure means no
    /// worker answered (unreachable, too slow, broker down) and names what failed; a domain
    /// error the worker computed (e.g. division by zero) is a successful run whose
    /// `outcome` holds the error.
    virtual Task<Result<WorkerResult>> run(JobInput input,
                                           std::chrono::steady_clock::time_point deadline) = 0;
};

using JobTransportPtr = std::unique_ptr<JobTransport>;

}  // namespace calcmesh::job_submitter
