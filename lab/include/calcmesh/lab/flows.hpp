#pragma once

// The lab's flow stage (bpf/flow.bpf.c) as the rest of calcmesh sees it: the events and maps it
// shares with user space (flow_abi.h), its counters, and the policy it enforces.

#include <linux/types.h>

#include <array>
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "calcmesh/lab/flow_abi.h"
#include "calcmesh/lab/topology.hpp"

namespace calcmesh::lab {

/// The flow stage's counters of a node summed over CPUs; all zero if it was never loaded.
std::array<std::uint64_t, FLOW_COUNTER_COUNT> read_flow_counters(const std::string& pin_dir);

/// The direction of a policy entry.
enum class Direction : std::uint8_t {
    ingress = DIRECTION_INGRESS,
    egress = DIRECTION_EGRESS,
};

/// One entry of the policy the datapath enforces, by security identity: `subject` may talk with
/// `peer` on `port` over `protocol` in `direction` (or may not, if `deny`).
struct PolicyEntry {
    std::uint32_t subject = 0;
    Direction direction = Direction::ingress;
    std::uint32_t peer = 0;     ///< 0: any identity
    std::uint16_t port = 0;     ///< 0: any port
    std::uint8_t protocol = 0;  ///< IPPROTO_TCP, IPPROTO_UDP, ...; 0: any protocol
    bool deny = false;
    bool l7 = false;         ///< the port has L7 rules, which the observer audits
    std::uint32_t rule = 0;  ///< reported with the flows it allows; 0: none

    auto operator<=>(const PolicyEntry&) const = default;
};

/// The policy in force: the allowed (and denied) flows, and which directions of which
/// identities are default-deny (those selected by at least one policy, as in Cilium).
struct EnforcedPolicy {
    std::set<std::pair<std::uint32_t, Direction>> default_deny;
    std::vector<PolicyEntry> entries;
};

/// Replaces the policy in the maps of every node of a running lab, while traffic flows: new
/// entries are added before a direction becomes default-deny, stale ones removed after.
/// Throws std::runtime_error if the lab has no flow stage.
void install_policy(const Topology& topology, const EnforcedPolicy& policy);

}  // namespace calcmesh::lab
