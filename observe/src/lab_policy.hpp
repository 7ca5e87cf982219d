#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <vector>

#include "decoder.hpp"
#include "flow.hpp"
#include "topology.hpp"

namespace calcmesh::observe {

/// The policy applied to a running lab with `calcmesh lab policy apply`: copies of the files,
/// kept in the lab's run directory, the names of the rules the datapath reports with flows, and
/// the audit of L7 rules on observed requests.
struct AppliedPolicy {
    std::vector<std::filesystem::path> files;
    std::map<std::uint32_t, PolicyRef> rules;
    std::unique_ptr<L7Audit> audit;  ///< null while no policy is applied
};

/// The lab's policy directory (/run/calcmesh-lab/<lab>/policy).
std::filesystem::path policy_dir(const std::string& lab);

/// Reads the policy applied to a lab; empty if none is.
AppliedPolicy load_applied_policy(const lab::Topology& topology);

}  // namespace calcmesh::observe
