#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "calcmesh/error.hpp"

/// The Helm values a cluster's Cilium is installed with (deploy/cilium/*.yaml), merged as Helm
/// merges several --values files, and the settings the mesh checks read from them.
namespace calcmesh::kube {

/// An IPv4 CIDR such as 10.1.0.0/16.
struct Cidr {
    std::uint32_t base = 0;  ///< the network address, host bits cleared
    int prefix = 0;
    std::string text;

    /// Fails on anything but a.b.c.d/n with host bits zero.
    static Result<Cidr> parse(const std::string& text);
    bool contains(const Cidr& other) const;
    bool overlaps(const Cidr& other) const;
};

struct CiliumValues {
    std::vector<std::string> files;           ///< the files merged, for messages
    YAML::Node values;                        ///< the merged values, for keys not read below
    std::string cluster_name;                 ///< cluster.name
    int cluster_id = 0;                       ///< cluster.id
    std::vector<Cidr> pod_cidrs;              ///< ipam.operator.clusterPoolIPv4PodCIDRList
    std::string routing_mode;                 ///< routingMode
    std::optional<Cidr> native_routing_cidr;  ///< ipv4NativeRoutingCIDR
    int clustermesh_node_port = 0;            ///< clustermesh.apiserver.service.nodePort

    /// "common.yaml + c1-client.yaml", for messages.
    std::string describe() const;
};

/// Loads and merges values files in order: a later file's maps merge into the earlier ones,
/// its other values replace them. Fails naming the file and key of a malformed value.
Result<CiliumValues> load_cilium_values(const std::vector<std::filesystem::path>& files);

}  // namespace calcmesh::kube
