#pragma once

#include <linux/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../bpf/flow_abi.h"
#include "bpf_datapath.hpp"
#include "network.hpp"
#include "topology.hpp"

namespace calcmesh::lab {

/// The flow stage runs before the router, so it sees every packet before a redirect.
constexpr std::uint32_t kFlowPriority = 50;

/// The flow stage (bpf/flow.bpf.c) of one node: identity-based policy with connection tracking,
/// and flow events for the observer. Loading fills the node's ipcache (every pod of every
/// cluster and every node address) and the ports whose HTTP or Kafka messages are captured.
class FlowStage final : public Stage {
  public:
    FlowStage(const Topology& topology, const Node& node);
    ~FlowStage() override;
    std::string_view name() const override { return "flow"; }
    std::uint32_t priority() const override { return kFlowPriority; }
    void load(const NodeHooks& node) override;
    int program_fd(Hook hook) const override;

  private:
    struct Skeleton;
    const Topology& topology_;
    const Node& node_;
    std::unique_ptr<Skeleton> skeleton_;
};

/// Loads the flow stage for every node and attaches it to the datapath's hooks, replacing an
/// earlier one; pinned maps (policy, connections, ring buffer) are kept.
void attach_flow_stage(const Topology& topology, Datapath datapath);

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
