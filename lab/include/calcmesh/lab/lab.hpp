#pragma once

// What the rest of calcmesh may do with a lab: build, switch and remove one, and find what a
// running lab holds (its folders, services and BPF pins) and start programs in its pods. The
// observer (calcmesh::observe) and the tests are built on this alone.

#include <sys/types.h>

#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "calcmesh/lab/topology.hpp"
#include "calcmesh/process.hpp"

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

/// What `calcmesh lab up` builds.
struct UpOptions {
    std::string name = "cm";
    Datapath datapath = Datapath::native;
    bool services = true;  ///< start the calcmesh services and the Kafka broker in the pods
    /// attach the flow stage (identity-based policy, flow events) and start the flow collector
    bool observe = true;
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

/// The topology of a running lab; throws std::runtime_error if there is no such lab.
Topology running_lab(const std::string& name);

/// The pid of the process a running lab started under `name` (a service, or "observer" for the
/// flow collector); nullopt if it started none by that name.
std::optional<pid_t> lab_process(const std::string& lab, const std::string& name);

/// The lab's run directory (/run/calcmesh-lab/<name>): state file, hosts file, logs and
/// service data.
std::filesystem::path lab_dir(const std::string& name);

/// The unix socket on which the lab's flow collector serves flows (`calcmesh observe`).
std::filesystem::path observer_socket(const std::string& name);

/// The pin directory of one node's BPF maps.
std::string node_pin_dir(const Topology& topology, const Node& node);

/// A process the lab runs in a pod: the real calcmesh services and the Kafka broker.
struct ServiceSpec {
    std::string pod;
    std::string name;
    int port;
    std::vector<std::string> argv;
};

/// The services of the lab, in start order (Kafka and log_collector before their clients),
/// configured as in the clusters: listening on the pod address, with peers by service name.
std::vector<ServiceSpec> service_specs(const Topology& topology);

/// How to start `argv` in a pod, a node or the underlay of a lab: in its network namespace and
/// with the lab's hosts file. Throws std::invalid_argument for an unknown target.
ChildProcess::Options launch_in(const Topology& topology, const std::string& target,
                                std::vector<std::string> argv);

/// The folder of the calcmesh binaries (the one this program runs from).
std::string bin_dir();

}  // namespace calcmesh::lab
