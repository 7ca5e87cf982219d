#include "calcmesh/lab/identity.hpp"

#include <fmt/format.h>

#include <set>
#include <stdexcept>

namespace calcmesh::lab {

std::vector<std::uint32_t> allocate_identities(const std::vector<LabelSet>& sets) {
    std::map<int, std::set<Labels>> distinct;
    for (const auto& set : sets) {
        distinct[set.cluster_id].insert(set.labels);
    }
    std::vector<std::uint32_t> identities;
    for (const auto& set : sets) {
        const auto& cluster = distinct.at(set.cluster_id);
        const auto local =
            static_cast<std::uint32_t>(std::distance(cluster.begin(), cluster.find(set.labels)));
        identities.push_back(static_cast<std::uint32_t>(set.cluster_id) << 16 |
                             (kFirstClusterIdentity + local));
    }
    return identities;
}

std::vector<std::string> Endpoint::label_strings() const {
    switch (identity) {
        case kIdentityHost:
            return {"reserved:host"};
        case kIdentityWorld:
            return {"reserved:world"};
        case kIdentityRemoteNode:
            return {"reserved:remote-node"};
    }
    std::vector<std::string> strings;
    for (const auto& [key, value] : labels) {
        strings.push_back(fmt::format("k8s:{}={}", key, value));
    }
    return strings;
}

Identities::Identities(const Topology& topology) : topology_(topology) {
    std::vector<LabelSet> sets;
    for (const auto& pod : topology.pods()) {
        if (pod.node.empty()) {
            continue;
        }
        const auto& node = topology.node(pod.node);
        Endpoint endpoint;
        endpoint.pod = pod.name;
        endpoint.node = pod.node;
        endpoint.cluster = topology.cluster(node.cluster_id).name;
        endpoint.namespace_ = std::string(Topology::kNamespace);
        endpoint.labels = pod.labels;
        endpoint.labels[kClusterLabel] = endpoint.cluster;
        endpoint.labels[kNamespaceLabel] = endpoint.namespace_;
        sets.push_back({node.cluster_id, endpoint.labels});
        pod_by_ip_[pod.ip] = pods_.size();
        pods_.push_back(std::move(endpoint));
    }
    const auto identities = allocate_identities(sets);
    for (std::size_t i = 0; i < pods_.size(); ++i) {
        pods_[i].identity = identities[i];
    }
}

Endpoint Identities::resolve(Ipv4 address, const std::string& on_node) const {
    if (const auto found = pod_by_ip_.find(address); found != pod_by_ip_.end()) {
        return pods_[found->second];
    }
    for (const auto& node : topology_.nodes()) {
        if (address != node.router_ip && address != node.underlay_ip &&
            address != node.overlay_ip) {
            continue;
        }
        Endpoint endpoint;
        endpoint.identity = node.name == on_node ? kIdentityHost : kIdentityRemoteNode;
        endpoint.node = node.name;
        endpoint.cluster = topology_.cluster(node.cluster_id).name;
        return endpoint;
    }
    return {};
}

std::uint32_t Identities::of_pod(const std::string& pod) const {
    const auto found = pod_by_ip_.find(topology_.pod(pod).ip);
    if (found == pod_by_ip_.end()) {
        throw std::invalid_argument(
            fmt::format("pod '{}' stands for the world and has no identity of its own", pod));
    }
    return pods_[found->second].identity;
}

std::string Identities::cluster_of(std::uint32_t identity) const {
    const auto id = static_cast<int>(identity >> 16);
    if (id < 1 || id > static_cast<int>(topology_.clusters().size())) {
        return {};
    }
    return topology_.cluster(id).name;
}

}  // namespace calcmesh::lab
