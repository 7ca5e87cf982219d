#pragma once

#include <vector>

#include "calcmesh/policy/engine.hpp"

namespace calcmesh::policy {

/// What Cilium accepts but is surely a mistake, on policies that parsed (load_policies reports
/// what Cilium would reject). Each finding names the file, the policy and the field:
///  - an endpointSelector that selects no pod of its cluster;
///  - a from/toEndpoints selector that matches no endpoint of any cluster (with a hint when a
///    cluster label is missing, or the labels are on a workload but not on its pod template);
///  - a toPorts port that no pod listens on: for ingress the pods the policy selects, for egress
///    the pods the rule names (over every cluster the policy is applied to);
///  - L7 rules that an L4 allow of the same peer and port makes ineffective;
///  - L7 rules of different kinds for the same peer and port (Cilium rejects that).
std::vector<Finding> lint(const PolicySet& set, const Inventory& inventory,
                          const Options& options = {});

}  // namespace calcmesh::policy
