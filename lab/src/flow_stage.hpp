#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "bpf_datapath.hpp"
#include "calcmesh/lab/flows.hpp"
#include "calcmesh/lab/topology.hpp"
#include "network.hpp"

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

}  // namespace calcmesh::lab
