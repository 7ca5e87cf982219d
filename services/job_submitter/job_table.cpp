#include "job_table.hpp"

#include <array>

#include "calcmesh/message_schema.hpp"

namespace calcmesh::job_submitter {

namespace {

std::string_view status_name(JobStatus status) {
    switch (status) {
        case JobStatus::pending:
            return "pending";
        case JobStatus::completed:
            return "completed";
        case JobStatus::failed:
            return "failed";
    }
    return "pending";
}

/// A job as `GET /jobs/<id>` and `POST /submit` answer it; `error`, if set, is the error that
/// answers the request.
struct JobAnswer {
    const Job& job;
    const Error* error;

    /// The worker's outcome, once the job has one.
    const Outcome* outcome() const {
        return job.status != JobStatus::pending && job.outcome ? &job.outcome.value() : nullptr;
    }
};

using schema::Field;
using schema::Presence;
using schema::Type;

/// A member written only once the job is completed, or only if a worker answered.
constexpr bool completed(const JobAnswer& answer) {
    return answer.job.completed_at.has_value();
}
constexpr bool answered(const JobAnswer& answer) {
    return answer.job.worker.has_value();
}

/// A member of the answering worker's identity.
template <class Member>
constexpr Field<JobAnswer> worker_field(std::string_view name, Member) {
    return {.name = name,
            .presence = Presence::optional,
            .has = answered,
            .write = [](std::string& out, const JobAnswer& answer) {
                append_json_string(out, Member{}(*answer.job.worker));
            }};
}

constexpr std::array<Field<JobAnswer>, 16> kJobAnswer{{
    {.name = "job_id",
     .write = [](std::string& out,
                 const JobAnswer& answer) { append_json_string(out, answer.job.input.job_id); }},
    {.name = "operation",
     .write =
         [](std::string& out, const JobAnswer& answer) {
             append_json_string(out, operation_name(answer.job.input.operation));
         }},
    {.name = "a",
     .type = Type::integer,
     .write = [](std::string& out,
                 const JobAnswer& answer) { append_json_integer(out, answer.job.input.a); }},
    {.name = "b",
     .type = Type::integer,
     .write = [](std::string& out,
                 const JobAnswer& answer) { append_json_integer(out, answer.job.input.b); }},
    {.name = "mechanism",
     .write =
         [](std::string& out, const JobAnswer& answer) {
             append_json_string(out, mechanism_name(answer.job.mechanism));
         }},
    {.name = "status",
     .write =
         [](std::string& out, const JobAnswer& answer) {
             append_json_string(out, status_name(answer.job.status));
         }},
    {.name = "submitted_at",
     .write =
         [](std::string& out, const JobAnswer& answer) {
             append_json_string(out, format_time(answer.job.submitted_at));
         }},
    {.name = "completed_at",
     .presence = Presence::optional,
     .has = completed,
     .write =
         [](std::string& out, const JobAnswer& answer) {
             append_json_string(out, format_time(*answer.job.completed_at));
         }},
    // nlohmann writes the number: the one way doubles are written in every answer.
    {.name = "elapsed_ms",
     .type = Type::number,
     .presence = Presence::optional,
     .has = completed,
     .write = [](std::string& out,
                 const JobAnswer& answer) { out += nlohmann::json(answer.job.elapsed_ms).dump(); }},
    {.name = "result",
     .type = Type::integer,
     .presence = Presence::optional,
     .has = [](const JobAnswer& answer) { return answer.outcome() != nullptr; },
     .write = [](std::string& out,
                 const JobAnswer& answer) { append_json_integer(out, answer.outcome()->result); }},
    {.name = "remainder",
     .type = Type::integer,
     .presence = Presence::optional,
     .has =
         [](const JobAnswer& answer) {
             return answer.outcome() != nullptr && answer.outcome()->remainder.has_value();
         },
     .write =
         [](std::string& out, const JobAnswer& answer) {
             append_json_integer(out, *answer.outcome()->remainder);
         }},
    // The error that ended the job, or the one that answers the request, with the job's id.
    {.name = "error",
     .type = Type::error,
     .presence = Presence::optional,
     .has =
         [](const JobAnswer& answer) {
             return answer.error != nullptr ||
                    (answer.job.status != JobStatus::pending && !answer.job.outcome);
         },
     .write =
         [](std::string& out, const JobAnswer& answer) {
             auto json =
                 error_json(answer.error ? *answer.error : answer.job.outcome.error())["error"];
             if (answer.error) {
                 json["job_id"] = answer.job.input.job_id;
             }
             out += json.dump();
         }},
    worker_field(
        "worker", [](const WorkerIdentity& worker) -> auto& { return worker.worker; }),
    worker_field(
        "worker_cluster", [](const WorkerIdentity& worker) -> auto& { return worker.cluster; }),
    worker_field(
        "worker_instance", [](const WorkerIdentity& worker) -> auto& { return worker.instance; }),
    worker_field(
        "worker_node", [](const WorkerIdentity& worker) -> auto& { return worker.node; }),
}};

}  // namespace

std::string to_json_text(const Job& job, const Error* error) {
    std::string text;
    text.reserve(400);
    schema::write_object<kJobAnswer>(text, JobAnswer{job, error});
    return text;
}

void JobTable::add(const Job& job) {
    std::lock_guard lock(mutex_);
    const auto [it, added] = jobs_.try_emplace(job.input.job_id, Entry{job, {}});
    if (added) {
        auto& queue = job.status == JobStatus::pending ? pending_ : ended_;
        it->second.queued = queue.insert(queue.end(), job.input.job_id);
    }
    while (jobs_.size() > capacity_) {
        auto& queue = ended_.empty() ? pending_ : ended_;
        jobs_.erase(queue.front());
        queue.pop_front();
    }
}

std::optional<Job> JobTable::finish(const std::string& job_id, Result<Outcome> outcome,
                                    std::optional<WorkerIdentity> worker) {
    std::lock_guard lock(mutex_);
    const auto it = jobs_.find(job_id);
    if (it == jobs_.end() || it->second.job.status != JobStatus::pending) {
        return std::nullopt;
    }
    auto& job = it->second.job;
    job.status = outcome ? JobStatus::completed : JobStatus::failed;
    job.outcome = std::move(outcome);
    job.worker = std::move(worker);
    job.completed_at = std::chrono::system_clock::now();
    job.elapsed_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - job.started)
            .count();
    ended_.splice(ended_.end(), pending_, it->second.queued);
    return job;
}

std::optional<Job> JobTable::find(const std::string& job_id) const {
    std::lock_guard lock(mutex_);
    const auto it = jobs_.find(job_id);
    if (it == jobs_.end()) {
        return std::nullopt;
    }
    return it->second.job;
}

std::size_t JobTable::size() const {
    std::lock_guard lock(mutex_);
    return jobs_.size();
}

}  // namespace calcmesh::job_submitter
