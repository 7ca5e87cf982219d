#pragma once

#include <sys/types.h>

#include <iosfwd>
#include <string>
#include <vector>

#include "calcmesh/lab/lab.hpp"
#include "calcmesh/lab/topology.hpp"
#include "network.hpp"
#include "process.hpp"
#include "state.hpp"

namespace calcmesh::lab {

/// The state of a running lab; throws std::runtime_error if there is no such lab.
LabState require_lab(const std::string& name);

/// How to start something in a pod, a node or the underlay of a lab: its namespace and the
/// lab's hosts file. Throws std::invalid_argument for an unknown target.
LaunchOptions launch_options(const Topology& topology, const std::string& target);

/// Starts a long-running process in a pod and records it in the state, so `down` ends it.
pid_t start_process(LabState& state, const std::string& pod, const std::string& name,
                    const std::vector<std::string>& argv, LaunchOptions options);

/// Ends a process recorded under `name` and forgets it.
void stop_process(LabState& state, const std::string& name);

/// Prints clusters, nodes, pods, addresses, processes, the datapath in force, the eBPF path
/// counters and the nodes' kernel forwarding counters.
void print_status(const std::string& name, std::ostream& out);

/// Runs a command in a pod, node or the underlay with the caller's terminal; returns its exit code.
int lab_exec(const std::string& name, const std::string& target,
             const std::vector<std::string>& argv);

}  // namespace calcmesh::lab
