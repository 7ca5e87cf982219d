#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "topology.hpp"

namespace calcmesh::lab {

/// How packets travel between the nodes (see docs/lab.md).
enum class Datapath {
    native,       ///< kernel routing over the underlay
    tunnel,       ///< kernel VXLAN between all nodes
    ebpf,         ///< tc programs redirect around the kernel's forwarding
    ebpf_tunnel,  ///< the same programs with a collect-metadata VXLAN device
};

std::string_view to_string(Datapath datapath);
/// Throws std::invalid_argument listing the datapaths if `text` names none of them.
Datapath parse_datapath(std::string_view text);
const std::vector<Datapath>& all_datapaths();

/// Creates the namespaces, the underlay, the nodes and the pods (addresses, routes to the
/// gateway, host routes to local pods); no datapath between nodes yet. Throws std::runtime_error.
void build_network(const Topology& topology);

/// Moves every node from one datapath to another; pods and the processes in them stay as they
/// are. With `from` unknown (a fresh lab, or a switch that failed half-way) every datapath is
/// torn down first. Throws std::runtime_error.
void apply_datapath(const Topology& topology, std::optional<Datapath> from, Datapath to);

/// The node's kernel IP forwarding counter (IpForwDatagrams in /proc/net/snmp).
std::uint64_t kernel_forwarded(const std::string& netns);

/// The pin directory of one node's BPF maps.
std::string node_pin_dir(const Topology& topology, const Node& node);

}  // namespace calcmesh::lab
