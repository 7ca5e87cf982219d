#pragma once

// What `calcmesh lab bench` measures: the pairs of pods and the workloads, with the names the
// report and the chart give them.

#include <string>
#include <vector>

namespace calcmesh::lab {

struct Pair {
    const char* id;
    const char* title;
    const char* short_title;
    const char* client;
    const char* server;
};

inline constexpr Pair kPairs[] = {
    {"same-node", "same node", "same node", "job-submitter", "help-page"},
    {"cross-node", "two nodes of one cluster", "2 nodes", "addition-worker", "subtraction-worker"},
    {"cross-cluster", "two clusters", "2 clusters", "job-submitter", "division-worker"},
};

// Jobs cross every cluster: client → job_submitter (c1) → a worker (c3a, c3b) directly or
// through the broker (c2), and each worker's log record back to log_collector (c1).
inline constexpr Pair kJobsPair = {"system", "client → the whole system", "system", "client",
                                   "job-submitter"};

// What the report knows about each workload; the data may hold others (shown with their id).
struct WorkloadInfo {
    const char* id;
    const char* name;
    const char* title;
    const char* unit;
    bool higher_is_better;
};

inline constexpr WorkloadInfo kWorkloads[] = {
    {"tcp_rr", "TCP_RR", "TCP_RR: 1-byte request and response on one connection, mean latency",
     "µs", false},
    {"tcp_crr", "TCP_CRR", "TCP_CRR: connect, 1-byte request and response, close; mean time", "µs",
     false},
    {"tcp_stream", "TCP_STREAM", "TCP_STREAM: one bulk stream (iperf3), received throughput",
     "Gbit/s", true},
    {"jobs_http", "jobs (http)",
     "calcmesh jobs, http mechanism: /submit jobs per second, 16 in flight", "jobs/s", true},
    {"jobs_kafka", "jobs (kafka)",
     "calcmesh jobs, kafka mechanism: /submit jobs per second, 16 in flight", "jobs/s", true},
};

/// The workload's names and unit; empty names for one the bench does not know.
WorkloadInfo workload_info(const std::string& id);
/// The ids of the known workloads and pairs, in the order the report shows them.
std::vector<std::string> known_workloads();
std::vector<std::string> known_pairs();
/// The pair's title ("two clusters") and short title ("2 clusters"); the id for an unknown pair.
std::string pair_title(const std::string& id);
std::string pair_short_title(const std::string& id);

}  // namespace calcmesh::lab
