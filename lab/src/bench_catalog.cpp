#include "bench_catalog.hpp"

namespace calcmesh::lab {

namespace {

const Pair* find_pair(const std::string& id) {
    if (id == kJobsPair.id) {
        return &kJobsPair;
    }
    for (const auto& pair : kPairs) {
        if (id == pair.id) {
            return &pair;
        }
    }
    return nullptr;
}

}  // namespace

WorkloadInfo workload_info(const std::string& id) {
    for (const auto& workload : kWorkloads) {
        if (id == workload.id) {
            return workload;
        }
    }
    return {"", "", "", "", false};
}

std::vector<std::string> known_workloads() {
    std::vector<std::string> ids;
    for (const auto& workload : kWorkloads) {
        ids.emplace_back(workload.id);
    }
    return ids;
}

std::vector<std::string> known_pairs() {
    std::vector<std::string> ids;
    for (const auto& pair : kPairs) {
        ids.emplace_back(pair.id);
    }
    ids.emplace_back(kJobsPair.id);
    return ids;
}

std::string pair_title(const std::string& id) {
    const auto* pair = find_pair(id);
    return pair ? pair->title : id;
}

std::string pair_short_title(const std::string& id) {
    const auto* pair = find_pair(id);
    return pair ? pair->short_title : id;
}

}  // namespace calcmesh::lab
