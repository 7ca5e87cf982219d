#pragma once

#include <sys/types.h>

#include <iosfwd>
#include <string>
#include <vector>

#include "network.hpp"
#include "process.hpp"
#include "state.hpp"
#include "topology.hpp"

namespace calcmesh::lab {

/// What `calcmesh lab up` builds.
struct UpOptions {
    std::string name = "cm";
    Datapath datapath = Datapath::native;
    bool services = true;  ///< start the calcmesh services and the Kafka broker in the pods
};

/// Builds a lab: namespaces, links, addresses, the datapath and the services. Everything is
/// recorded in the state file before it is made; on failure what was made is removed again.
/// Throws std::runtime_error (or std::invalid_argument for bad options).
void lab_up(const UpOptions& options, std::ostream& log);

/// Removes everything a lab made: processes in its pods, namespaces (and with them every link
/// and tc program), BPF pins and its run directory. Works from the state file alone, so also
/// after a crash. Returns false if there was no such lab.
bool lab_down(const std::string& name, std::ostream& log);

/// Switches a running lab to another datapath without touching the processes in the pods.
void lab_switch(const std::string& name, Datapath to);

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

/// The folder of the calcmesh binaries (the one this program runs from).
std::string bin_dir();

}  // namespace calcmesh::lab
