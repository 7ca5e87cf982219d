#include "job_table.hpp"

#include "calcmesh/json_writer.hpp"

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
}  // namespace

std::string to_json_text(const Job& job, const Error* error) {
    const bool finished = job.status != JobStatus::pending;
    const auto* outcome = finished && job.outcome ? &job.outcome.value() : nullptr;
    std::string text;
    text.reserve(400);
    {
        JsonObjectWriter object(text);
        object.add("a", job.input.a);
        object.add("b", job.input.b);
        if (job.completed_at) {
            object.add("completed_at", format_time(*job.completed_at));
            // nlohmann writes the number: the one way doubles are written in every answer.
            object.key("elapsed_ms") += nlohmann::json(job.elapsed_ms).dump();
        }
        if (error || (finished && !job.outcome)) {
            auto json = error_json(error ? *error : job.outcome.error())["error"];
            if (error) {
                json["job_id"] = job.input.job_id;
            }
            object.key("error") += json.dump();
        }
        object.add("job_id", job.input.job_id);
        object.add("mechanism", mechanism_name(job.mechanism));
        object.add("operation", operation_name(job.input.operation));
        if (outcome && outcome->remainder) {
            object.add("remainder", *outcome->remainder);
        }
        if (outcome) {
            object.add("result", outcome->result);
        }
        object.add("status", status_name(job.status));
        object.add("submitted_at", format_time(job.submitted_at));
        if (job.worker) {
            object.add("worker", job.worker->worker);
            object.add("worker_cluster", job.worker->cluster);
            object.add("worker_instance", job.worker->instance);
            object.add("worker_node", job.worker->node);
        }
    }
    return text;
}

void JobTable::add(const Job& job) {
    std::lock_guard lock(mutex_);
    if (jobs_.emplace(job.input.job_id, job).second) {
        order_.push_back(job.input.job_id);
    }
    while (order_.size() > capacity_) {
        jobs_.erase(order_.front());
        order_.pop_front();
    }
}

std::optional<Job> JobTable::finish(const std::string& job_id, Result<Outcome> outcome,
                                    std::optional<WorkerIdentity> worker) {
    std::lock_guard lock(mutex_);
    const auto it = jobs_.find(job_id);
    if (it == jobs_.end() || it->second.status != JobStatus::pending) {
        return std::nullopt;
    }
    auto& job = it->second;
    job.status = outcome ? JobStatus::completed : JobStatus::failed;
    job.outcome = std::move(outcome);
    job.worker = std::move(worker);
    job.completed_at = std::chrono::system_clock::now();
    job.elapsed_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - job.started)
            .count();
    return job;
}

std::optional<Job> JobTable::find(const std::string& job_id) const {
    std::lock_guard lock(mutex_);
    const auto it = jobs_.find(job_id);
    if (it == jobs_.end()) {
        return std::nullopt;
    }
    return it->second;
}

std::size_t JobTable::size() const {
    std::lock_guard lock(mutex_);
    return jobs_.size();
}

}  // namespace calcmesh::job_submitter
