#include "job_table.hpp"

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

nlohmann::json to_json(const Job& job) {
    // Field by field into one object: nlohmann's initializer lists build a temporary array
    // per pair, which cost about twice as much.
    auto json = nlohmann::json::object();
    put_input(json, job.input);
    json["status"] = status_name(job.status);
    json["mechanism"] = mechanism_name(job.mechanism);
    if (job.status != JobStatus::pending) {
        put_outcome(json, job.outcome);
    }
    if (job.worker) {
        json["worker"] = job.worker->worker;
        json["worker_instance"] = job.worker->instance;
        json["worker_cluster"] = job.worker->cluster;
        json["worker_node"] = job.worker->node;
    }
    json["submitted_at"] = format_time(job.submitted_at);
    if (job.completed_at) {
        json["completed_at"] = format_time(*job.completed_at);
        json["elapsed_ms"] = job.elapsed_ms;
    }
    return json;
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
