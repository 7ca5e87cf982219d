#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace calcmesh::lab {

/// An IPv4 address in host byte order.
struct Ipv4 {
    std::uint32_t value = 0;

    /// Dotted-quad text, e.g. "198.18.17.10".
    std::string str() const;
    /// The address in network byte order, as BPF maps and sockets want it.
    std::uint32_t network_order() const;
    auto operator<=>(const Ipv4&) const = default;
};

/// One of the four clusters of the case study.
struct Cluster {
    int id;            ///< 1..4, also the third octet block of its pod CIDR.
    std::string name;  ///< e.g. "c1-client".
};

/// A Kubernetes node: a network namespace with pods behind veth pairs and one underlay link.
struct Node {
    std::string name;  ///< e.g. "c3an2"; the namespace is "<lab>-<name>".
    int cluster_id;
    Ipv4 pod_cidr;     ///< the node's /24 of pod addresses
    Ipv4 router_ip;    ///< the pods' gateway (Cilium's router IP), on the node's host device
    Ipv4 underlay_ip;  ///< on the node's `ul0`, in the underlay's /24
    Ipv4 overlay_ip;   ///< on the kernel VXLAN device in tunnel mode
};

/// Kubernetes labels: key to value.
using Labels = std::map<std::string, std::string>;

/// A pod: a namespace with `eth0`, a /32 address and its node as the gateway. The client pod
/// stands for the outside world: it sits on the underlay, not behind a node.
struct Pod {
    std::string name;    ///< e.g. "addition-worker"; also its service name in the hosts file.
    std::string device;  ///< the host-side veth in the node, e.g. "lxc-add"
    std::string node;    ///< empty for the client
    Ipv4 ip;
    /// The labels of the deployment kit's pod template (app.kubernetes.io/name, component,
    /// part-of), so that the same policies select the same workloads; empty for the client.
    Labels labels;
};

/// The whole lab: clusters, nodes, pods, their addresses (all in 198.18.0.0/15) and the names
/// of the namespaces that hold them. Pure data: building it touches nothing.
class Topology {
  public:
    static constexpr int kPodPrefixLength = 24;
    static constexpr int kUnderlayPrefixLength = 24;
    static constexpr std::uint32_t kVni = 42;
    static constexpr int kMtu = 1500;
    static constexpr int kTunnelMtu = 1450;  ///< 1500 minus the 50 bytes of VXLAN over IPv4
    static constexpr std::string_view kClientPod = "client";
    static constexpr std::string_view kUnderlay = "underlay";
    /// The namespace of the calcmesh workloads in the clusters.
    static constexpr std::string_view kNamespace = "calcmesh";

    /// Throws std::invalid_argument unless the lab name is 1-12 of [a-z0-9], starting with a
    /// letter.
    explicit Topology(std::string lab_name);

    const std::string& lab_name() const { return lab_name_; }
    const std::vector<Cluster>& clusters() const { return clusters_; }
    const std::vector<Node>& nodes() const { return nodes_; }
    const std::vector<Pod>& pods() const { return pods_; }

    /// Throws std::invalid_argument naming the known pods if there is no such pod.
    const Pod& pod(std::string_view name) const;
    const Node& node(std::string_view name) const;
    const Cluster& cluster(int id) const;
    std::vector<const Pod*> pods_on(const Node& node) const;

    /// The namespace of a node, a pod or the underlay ("underlay"), e.g. "cm-c1n1".
    std::string netns(std::string_view object) const;
    /// Every namespace of the lab, underlay first.
    std::vector<std::string> all_netns() const;
    /// Throws std::invalid_argument unless `object` names a pod, a node or the underlay.
    std::string netns_of(std::string_view object) const;

    /// /etc/hosts for the pods: every pod's name resolves to its address, as a global service.
    std::string hosts_file() const;

  private:
    std::string lab_name_;
    std::vector<Cluster> clusters_;
    std::vector<Node> nodes_;
    std::vector<Pod> pods_;
};

/// Deterministic locally administered MACs, so the datapath needs no lookups to know them.
std::string pod_mac(const Pod& pod);
std::string lxc_mac(const Pod& pod);
std::string overlay_mac(const Node& node);

}  // namespace calcmesh::lab
