#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "calcmesh/lab/flows.hpp"
#include "calcmesh/lab/topology.hpp"
#include "calcmesh/policy/engine.hpp"
#include "decoder.hpp"
#include "flow.hpp"

namespace calcmesh::observe {

/// The lab's pods as the policy engine sees them: one endpoint per pod of `lab::Identities`
/// (same order), with its labels, namespace, cluster and its service's port (named "http", or
/// "kafka" for the broker, as in the deployment kit).
policy::Inventory lab_inventory(const lab::Topology& topology);

/// Policy files compiled for the pods of a lab.
struct LabPolicy {
    policy::Inventory inventory;
    policy::CompiledPolicy compiled;
    lab::EnforcedPolicy enforced;              ///< what the flow stage's maps get
    std::map<std::uint32_t, PolicyRef> rules;  ///< the policies by the numbers in `enforced`
    std::size_t policies = 0;                  ///< how many policies the files hold
};

/// Loads the files (a file applies to the cluster its name says) and compiles them for the
/// lab's pods. Throws std::invalid_argument listing every finding (file, policy and field) if
/// a file is wrong; the same files always give the same rule numbers.
LabPolicy compile_lab_policy(const lab::Topology& topology,
                             const std::vector<std::filesystem::path>& files);

/// The lab's policy directory (/run/calcmesh-lab/<lab>/policy): copies of the applied files.
std::filesystem::path policy_dir(const std::string& lab);

/// Compiles the files, writes the flow stage's policy maps on every node (while traffic flows,
/// nothing restarts), keeps copies of the files and makes the collector read them. Nothing
/// changes if a file is wrong.
void apply_lab_policy(const lab::Topology& topology,
                      const std::vector<std::filesystem::path>& files, std::ostream& out);

/// Takes back applied files (those with the same content as `files`) and enforces the rest; with
/// no files, or none left, empties the policy maps (full connectivity again).
void remove_lab_policy(const lab::Topology& topology,
                       const std::vector<std::filesystem::path>& files, std::ostream& out);

/// The policy applied to a running lab, as the collector uses it: the copies of the files, the
/// names of the rules the datapath reports with flows, and the audit of L7 rules on observed
/// requests.
struct AppliedPolicy {
    std::vector<std::filesystem::path> files;
    std::map<std::uint32_t, PolicyRef> rules;
    std::unique_ptr<L7Audit> audit;  ///< null while no policy is applied
};

/// Reads the policy applied to a lab; empty if none is.
AppliedPolicy load_applied_policy(const lab::Topology& topology);

}  // namespace calcmesh::observe
