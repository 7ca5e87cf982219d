#pragma once

#include <linux/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "../bpf/datapath_abi.h"
#include "calcmesh/lab/topology.hpp"

namespace calcmesh::lab {

/// The tc ingress hooks of a node where eBPF stages run.
enum class Hook {
    container,  ///< every lxc device: what the node's pods send
    netdev,     ///< the underlay device `ul0`: what other nodes and the client send
    overlay,    ///< the collect-metadata VXLAN device: what arrives through the tunnel
};

/// A node as the BPF stages see it: its namespace, pin directory and the device of each hook.
struct NodeHooks {
    std::string netns;
    std::string pin_dir;  ///< maps declared with LIBBPF_PIN_BY_NAME live here, shared by stages
    std::vector<std::string> container_devices;
    std::string netdev;
    std::string overlay;  ///< empty unless the node has a collect-metadata VXLAN device

    /// The devices a hook runs on, in this node.
    std::vector<std::string> devices(Hook hook) const;
};

/// A BPF object whose programs run on a node's hooks at one tc priority. Stages with a lower
/// priority run first and pass a packet on with TC_ACT_UNSPEC; the router comes last. A policy or
/// flow stage is added by implementing this interface with its own skeleton, including
/// bpf/lab_maps.h to share the node's maps, and attaching it with `attach_stage`.
class Stage {
  public:
    virtual ~Stage() = default;
    virtual std::string_view name() const = 0;
    /// The tc priority and handle of the stage's filters on every hook.
    virtual std::uint32_t priority() const = 0;
    /// Opens and loads the object for a node; pinned maps are created or reused in its pin dir.
    virtual void load(const NodeHooks& node) = 0;
    /// The program run on a hook, or -1 if the stage does not use it.
    virtual int program_fd(Hook hook) const = 0;
};

/// Priorities below this one are free for stages that must see packets before they are
/// redirected (policy, flow observation): bpf_redirect_peer skips every later hook.
constexpr std::uint32_t kRouterPriority = 100;

/// The eBPF host router (bpf/router.bpf.c) of one node: fills the node's endpoints and tunnels
/// maps from the topology and routes through the collect-metadata VXLAN device if the node has
/// one.
class RouterStage final : public Stage {
  public:
    RouterStage(const Topology& topology, const Node& node);
    ~RouterStage() override;
    std::string_view name() const override { return "router"; }
    std::uint32_t priority() const override { return kRouterPriority; }
    void load(const NodeHooks& node) override;
    int program_fd(Hook hook) const override;

  private:
    struct Skeleton;
    const Topology& topology_;
    const Node& node_;
    std::unique_ptr<Skeleton> skeleton_;
};

/// Attaches a loaded stage's programs to the node's hooks (creating clsact where missing),
/// replacing the stage's earlier filters. Throws std::runtime_error.
void attach_stage(const NodeHooks& node, const Stage& stage);

/// Removes the filters of one priority from every hook device of the node that exists.
void detach_priority(const NodeHooks& node, std::uint32_t priority);

/// Path counters summed over CPUs, from the node's pinned map; all zero if it was never loaded.
std::array<path_counter, PATH_COUNT> read_path_counters(const std::string& pin_dir);

/// Short stable name of a path counter, e.g. "fib_redirect".
std::string_view path_name(int path);

/// Mounts a BPF filesystem on /sys/fs/bpf unless one is there, and notes in `marker` that the
/// lab did so. Throws std::runtime_error if it cannot.
void ensure_bpffs(const std::string& marker);

/// Unmounts /sys/fs/bpf if the lab mounted it (`marker` exists) and no pins are left in it.
void release_bpffs(const std::string& marker);

}  // namespace calcmesh::lab
