#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bpf_datapath.hpp"
#include "calcmesh/lab/lab.hpp"
#include "calcmesh/lab/topology.hpp"

namespace calcmesh::lab {

/// Creates the namespaces, the underlay, the nodes and the pods (addresses, routes to the
/// gateway, host routes to local pods); no datapath between nodes yet. Throws std::runtime_error.
void build_network(const Topology& topology);

/// Moves every node from one datapath to another; pods and the processes in them stay as they
/// are. With `from` unknown (a fresh lab, or a switch that failed half-way) every datapath is
/// torn down first. Throws std::runtime_error.
void apply_datapath(const Topology& topology, std::optional<Datapath> from, Datapath to);

/// The node's kernel IP forwarding counter (IpForwDatagrams in /proc/net/snmp).
std::uint64_t kernel_forwarded(const std::string& netns);

/// A node's hooks for eBPF stages in a datapath: its lxc devices, `ul0`, and the VXLAN device
/// that decapsulated packets arrive on (`vxlan0` in tunnel, `cm_vxlan` in ebpf-tunnel), if any.
NodeHooks node_hooks(const Topology& topology, const Node& node, Datapath datapath);

}  // namespace calcmesh::lab
