#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "calcmesh/lab/topology.hpp"

namespace calcmesh::lab {

/// Cilium's reserved security identities that occur in the lab.
constexpr std::uint32_t kIdentityHost = 1;        ///< the node the packet is seen on
constexpr std::uint32_t kIdentityWorld = 2;       ///< anything outside the clusters
constexpr std::uint32_t kIdentityRemoteNode = 6;  ///< any other node of the mesh
/// Identities allocated for label sets start here in every cluster, as in Cilium.
constexpr std::uint32_t kFirstClusterIdentity = 256;

/// Label keys Cilium adds to every pod's identity.
constexpr const char* kClusterLabel = "io.cilium.k8s.policy.cluster";
constexpr const char* kNamespaceLabel = "io.kubernetes.pod.namespace";

/// A cluster's label set before it has an identity.
struct LabelSet {
    int cluster_id;
    Labels labels;  ///< including the cluster and namespace labels
};

/// Numbers label sets as Cilium does in a ClusterMesh: the cluster id in bits 16-23 and a
/// cluster-local number from 256 up, so equal label sets share one identity and no two clusters
/// collide. Local numbers follow the sorted order of the label sets, which keeps identities the
/// same from one `lab up` to the next. Returns one identity per input, in input order.
std::vector<std::uint32_t> allocate_identities(const std::vector<LabelSet>& sets);

/// What an address of the lab stands for, as a flow shows it.
struct Endpoint {
    std::uint32_t identity = kIdentityWorld;
    std::string pod;         ///< empty unless a pod of a cluster
    std::string node;        ///< the pod's node, or the node owning a node address
    std::string cluster;     ///< empty for the world
    std::string namespace_;  ///< empty unless a pod
    Labels labels;           ///< the identity's labels, cluster and namespace included

    /// Labels as Hubble prints them: "k8s:key=value", or "reserved:world" and the like.
    std::vector<std::string> label_strings() const;
};

/// The security identities and the IP-to-identity cache of a lab: every pod of every cluster
/// with the labels of its pod template plus namespace and cluster, every node address, and the
/// world for anything else.
class Identities {
  public:
    explicit Identities(const Topology& topology);

    /// The endpoint of an address as seen from `on_node`: a pod, this node (host), another node
    /// (remote-node), or the world.
    Endpoint resolve(Ipv4 address, const std::string& on_node) const;
    /// The identity of a pod of a cluster; throws std::invalid_argument for the client pod or an
    /// unknown pod.
    std::uint32_t of_pod(const std::string& pod) const;
    /// Every pod of the clusters with its identity (the client pod is the world, not listed).
    const std::vector<Endpoint>& pods() const { return pods_; }
    /// The cluster name of an identity (from its cluster bits), empty for reserved identities.
    std::string cluster_of(std::uint32_t identity) const;

  private:
    const Topology& topology_;
    std::vector<Endpoint> pods_;
    std::map<Ipv4, std::size_t> pod_by_ip_;
};

}  // namespace calcmesh::lab
