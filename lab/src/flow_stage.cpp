#include "flow_stage.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <stdexcept>

#include "calcmesh/lab/identity.hpp"
#include "flow.skel.h"
#include "services.hpp"

namespace calcmesh::lab {

namespace {

void check(int rc, const std::string& what) {
    if (rc < 0) {
        throw std::runtime_error(fmt::format("{}: {}", what, std::strerror(-rc)));
    }
}

// A pinned map of a node, opened for as long as the object lives.
class PinnedMap {
  public:
    PinnedMap(const std::string& pin_dir, const char* name) : path_(pin_dir + "/" + name) {
        fd_ = bpf_obj_get(path_.c_str());
        if (fd_ < 0) {
            throw std::runtime_error(fmt::format(
                "{} is missing: the lab runs without the flow stage (built with --no-observe?)",
                path_));
        }
    }
    ~PinnedMap() { close(fd_); }
    PinnedMap(const PinnedMap&) = delete;
    PinnedMap& operator=(const PinnedMap&) = delete;

    template <class Key, class Value>
    void put(const Key& key, const Value& value) const {
        check(bpf_map_update_elem(fd_, &key, &value, BPF_ANY), "update " + path_);
    }
    template <class Key>
    void erase(const Key& key) const {
        const int rc = bpf_map_delete_elem(fd_, &key);
        if (rc != -ENOENT) {
            check(rc, "delete from " + path_);
        }
    }
    template <class Key>
    std::vector<Key> keys() const {
        std::vector<Key> result;
        Key key{};
        Key next{};
        const Key* previous = nullptr;
        while (bpf_map_get_next_key(fd_, previous, &next) == 0) {
            result.push_back(next);
            key = next;
            previous = &key;
        }
        return result;
    }

  private:
    std::string path_;
    int fd_;
};

// Orders the map's keys by their bytes (they have no padding).
struct KeyLess {
    bool operator()(const policy_key& a, const policy_key& b) const {
        return std::memcmp(&a, &b, sizeof(a)) < 0;
    }
};

policy_key key_of(const PolicyEntry& entry) {
    policy_key key{};
    key.subject = entry.subject;
    key.peer = entry.peer;
    key.port = entry.port;
    key.protocol = entry.protocol;
    key.direction = static_cast<__u8>(entry.direction);
    return key;
}

void fill_ipcache(int map_fd, const Topology& topology, const Node& on) {
    const Identities identities(topology);
    const auto put = [&](Ipv4 address, std::uint32_t identity, std::uint32_t flags) {
        ipcache_key key{32, address.network_order()};
        ipcache_info info{identity, flags};
        check(bpf_map_update_elem(map_fd, &key, &info, BPF_ANY), "update ipcache");
    };
    for (const auto& pod : identities.pods()) {
        put(topology.pod(pod.pod).ip, pod.identity, pod.node == on.name ? IPCACHE_LOCAL_POD : 0);
    }
    for (const auto& node : topology.nodes()) {
        const auto identity = node.name == on.name ? kIdentityHost : kIdentityRemoteNode;
        for (const auto address : {node.router_ip, node.underlay_ip, node.overlay_ip}) {
            put(address, identity, 0);
        }
    }
}

// The lab's services: Kafka's port carries Kafka, every other service speaks HTTP.
void fill_l7_ports(int map_fd, const Topology& topology) {
    for (const auto& spec : service_specs(topology)) {
        const auto port = static_cast<__u16>(spec.port);
        const __u8 protocol = spec.name == "kafka" ? L7_KAFKA : L7_HTTP;
        check(bpf_map_update_elem(map_fd, &port, &protocol, BPF_ANY), "update l7_ports");
    }
}

}  // namespace

struct FlowStage::Skeleton {
    flow_bpf* skel = nullptr;
    ~Skeleton() { flow_bpf__destroy(skel); }
};

FlowStage::FlowStage(const Topology& topology, const Node& node)
    : topology_(topology), node_(node), skeleton_(std::make_unique<Skeleton>()) {}

FlowStage::~FlowStage() = default;

void FlowStage::load(const NodeHooks& node) {
    std::filesystem::create_directories(node.pin_dir);
    bpf_object_open_opts opts{};
    opts.sz = sizeof(opts);
    opts.pin_root_path = node.pin_dir.c_str();
    skeleton_->skel = flow_bpf__open_opts(&opts);
    if (skeleton_->skel == nullptr) {
        throw std::runtime_error(fmt::format("open flow BPF object: {}", std::strerror(errno)));
    }
    auto* skel = skeleton_->skel;
    check(flow_bpf__load(skel), fmt::format("load flow BPF programs for {}", node_.name));
    fill_ipcache(bpf_map__fd(skel->maps.ipcache), topology_, node_);
    fill_l7_ports(bpf_map__fd(skel->maps.l7_ports), topology_);
}

int FlowStage::program_fd(Hook hook) const {
    auto* skel = skeleton_->skel;
    return bpf_program__fd(hook == Hook::container ? skel->progs.flow_container
                                                   : skel->progs.flow_outside);
}

void attach_flow_stage(const Topology& topology, Datapath datapath) {
    for (const auto& node : topology.nodes()) {
        const auto hooks = node_hooks(topology, node, datapath);
        FlowStage stage(topology, node);
        stage.load(hooks);
        attach_stage(hooks, stage);
    }
}

std::array<std::uint64_t, FLOW_COUNTER_COUNT> read_flow_counters(const std::string& pin_dir) {
    std::array<std::uint64_t, FLOW_COUNTER_COUNT> totals{};
    const auto path = pin_dir + "/flow_stats";
    if (!std::filesystem::exists(path)) {
        return totals;
    }
    const int fd = bpf_obj_get(path.c_str());
    check(fd, "open " + path);
    std::vector<std::uint64_t> per_cpu(static_cast<std::size_t>(libbpf_num_possible_cpus()));
    for (__u32 key = 0; key < FLOW_COUNTER_COUNT; ++key) {
        const int rc = bpf_map_lookup_elem(fd, &key, per_cpu.data());
        if (rc < 0) {
            close(fd);
            check(rc, "read " + path);
        }
        for (const auto value : per_cpu) {
            totals[key] += value;
        }
    }
    close(fd);
    return totals;
}

void install_policy(const Topology& topology, const EnforcedPolicy& policy) {
    std::map<policy_key, policy_entry, KeyLess> entries;
    for (const auto& entry : policy.entries) {
        const auto flags = (entry.deny ? POLICY_DENY : 0) | (entry.l7 ? POLICY_L7 : 0);
        entries[key_of(entry)] = {entry.rule, static_cast<__u32>(flags)};
    }
    std::map<std::uint32_t, policy_mode> modes;
    for (const auto& [identity, direction] : policy.default_deny) {
        auto& mode = modes[identity];
        (direction == Direction::ingress ? mode.ingress : mode.egress) = 1;
    }
    for (const auto& node : topology.nodes()) {
        const auto dir = node_pin_dir(topology, node);
        const PinnedMap policy_map(dir, "policy");
        const PinnedMap mode_map(dir, "policy_modes");
        for (const auto& [key, value] : entries) {
            policy_map.put(key, value);
        }
        for (const auto identity : mode_map.keys<std::uint32_t>()) {
            if (!modes.contains(identity)) {
                mode_map.erase(identity);
            }
        }
        for (const auto& [identity, mode] : modes) {
            mode_map.put(identity, mode);
        }
        for (const auto& key : policy_map.keys<policy_key>()) {
            if (!entries.contains(key)) {
                policy_map.erase(key);
            }
        }
    }
}

}  // namespace calcmesh::lab
