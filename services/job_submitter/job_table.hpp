#pragma once

#include <chrono>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "calcmesh/job.hpp"

namespace calcmesh::job_submitter {

enum class JobStatus { pending, completed, failed };

/// A job this job_submitter instance handled, as `GET /jobs/<id>` shows it.
struct Job {
    JobInput input;
    Mechanism mechanism = Mechanism::http;
    JobStatus status = JobStatus::pending;
    /// Set once finished: the worker's outcome, or the error that ended the job.
    Result<Outcome> outcome = Outcome{};
    std::optional<WorkerIdentity> worker;  ///< who answered, if anyone did
    std::chrono::system_clock::time_point submitted_at;
    std::chrono::steady_clock::time_point started;
    std::optional<std::chrono::system_clock::time_point> completed_at;
    double elapsed_ms = 0;
};

/// The job as compact JSON, keys in alphabetical order. With `error`, the answer to a job that
/// failed: that error, with the job's id in it, is the "error" member.
std::string to_json_text(const Job& job, const Error* error = nullptr);

/// The jobs of this instance, bounded: when full, the job that ended first is forgotten, and
/// a pending job only when none has ended, so that a job accepted with `wait: false` is still
/// there when its result comes, however many quick jobs ran meanwhile. Thread-safe.
class JobTable {
  public:
    explicit JobTable(std::size_t capacity) : capacity_(capacity) {}

    /// Adds a pending job.
    void add(const Job& job);
    /// Records the end of a job. Only the first end counts; returns the job as it now is,
    /// or nothing if the job is unknown (forgotten) or had already ended.
    std::optional<Job> finish(const std::string& job_id, Result<Outcome> outcome,
                              std::optional<WorkerIdentity> worker);
    std::optional<Job> find(const std::string& job_id) const;
    std::size_t size() const;

  private:
    std::size_t capacity_;
    mutable std::mutex mutex_;
    struct Entry {
        Job job;
        std::list<std::string>::iterator queued;  ///< its place in pending_ or ended_
    };
    std::unordered_map<std::string, Entry> jobs_;
    std::list<std::string> pending_;  ///< by submission
    std::list<std::string> ended_;    ///< by the time they ended
};

}  // namespace calcmesh::job_submitter
