#include "network.hpp"

#include <fmt/format.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "bpf_datapath.hpp"
#include "process.hpp"
#include "state.hpp"

namespace calcmesh::lab {

namespace {

constexpr std::string_view kNames[] = {"native", "tunnel", "ebpf", "ebpf-tunnel"};
// The router IP sits on a veth pair of the node's own, as on cilium_host/cilium_net.
constexpr const char* kHostDevice = "cm_host";
constexpr const char* kHostPeerDevice = "cm_net";
constexpr const char* kUnderlayDevice = "ul0";
constexpr const char* kKernelVxlan = "vxlan0";      // tunnel mode
constexpr const char* kMetadataVxlan = "cm_vxlan";  // ebpf-tunnel mode, like cilium_vxlan
constexpr int kVxlanPort = 4789;

void ip_batch(const std::string& netns, const std::string& script) {
    run_checked({"ip", "-n", netns, "-batch", "-"}, {}, script);
}

void write_sysctl(const std::string& netns, const std::string& key, const std::string& value) {
    in_netns(netns, [&] {
        std::ofstream file("/proc/sys/" + key);
        file << value;
        file.close();
        if (!file) {
            throw std::runtime_error(fmt::format("sysctl {} in {}", key, netns));
        }
    });
}

bool is_tunnel(Datapath datapath) {
    return datapath == Datapath::tunnel || datapath == Datapath::ebpf_tunnel;
}

bool is_ebpf(Datapath datapath) {
    return datapath == Datapath::ebpf || datapath == Datapath::ebpf_tunnel;
}

// Routes to every other node's pods: over the underlay, or through the kernel VXLAN device.
std::string remote_routes(const Topology& topology, const Node& node, bool via_vxlan) {
    std::string script;
    for (const auto& other : topology.nodes()) {
        if (other.name == node.name) {
            continue;
        }
        if (via_vxlan) {
            script +=
                fmt::format("route replace {}/{} via {} dev {} onlink\n", other.pod_cidr.str(),
                            Topology::kPodPrefixLength, other.overlay_ip.str(), kKernelVxlan);
        } else {
            script +=
                fmt::format("route replace {}/{} via {} dev {}\n", other.pod_cidr.str(),
                            Topology::kPodPrefixLength, other.underlay_ip.str(), kUnderlayDevice);
        }
    }
    return script;
}

void add_kernel_vxlan(const Topology& topology, const Node& node) {
    const auto netns = topology.netns(node.name);
    std::string links = fmt::format(
        "link add {} address {} type vxlan id {} local {} dstport {} dev {} nolearning\n"
        "addr add {}/{} dev {}\nlink set {} up\n",
        kKernelVxlan, overlay_mac(node), Topology::kVni, node.underlay_ip.str(), kVxlanPort,
        kUnderlayDevice, node.overlay_ip.str(), Topology::kUnderlayPrefixLength, kKernelVxlan,
        kKernelVxlan);
    // Static neighbours and forwarding entries: each remote node's VXLAN MAC sits behind its
    // underlay address, so nothing is flooded or learned.
    std::string fdb;
    for (const auto& other : topology.nodes()) {
        if (other.name == node.name) {
            continue;
        }
        links += fmt::format("neigh replace {} lladdr {} dev {} nud permanent\n",
                             other.overlay_ip.str(), overlay_mac(other), kKernelVxlan);
        fdb += fmt::format("fdb append {} dev {} dst {}\n", overlay_mac(other), kKernelVxlan,
                           other.underlay_ip.str());
    }
    ip_batch(netns, links);
    run_checked({"bridge", "-n", netns, "-batch", "-"}, {}, fdb);
}

void set_pod_mtu(const Topology& topology, int mtu) {
    for (const auto& node : topology.nodes()) {
        std::string script;
        for (const auto* pod : topology.pods_on(node)) {
            script += fmt::format("link set {} mtu {}\n", pod->device, mtu);
            ip_batch(topology.netns(pod->name), fmt::format("link set eth0 mtu {}\n", mtu));
        }
        if (!script.empty()) {
            ip_batch(topology.netns(node.name), script);
        }
    }
}

void teardown(const Topology& topology, Datapath datapath) {
    for (const auto& node : topology.nodes()) {
        const auto netns = topology.netns(node.name);
        if (is_ebpf(datapath)) {
            detach_priority(node_hooks(topology, node, datapath), kRouterPriority);
        }
        if (datapath == Datapath::tunnel) {
            ip_batch(netns, fmt::format("link del {}\n", kKernelVxlan));
        }
        if (datapath == Datapath::ebpf_tunnel) {
            ip_batch(netns, fmt::format("link del {}\n", kMetadataVxlan));
        }
    }
}

void setup(const Topology& topology, Datapath datapath) {
    for (const auto& node : topology.nodes()) {
        const auto netns = topology.netns(node.name);
        if (datapath == Datapath::tunnel) {
            add_kernel_vxlan(topology, node);
        }
        // The eBPF datapaths keep the native routes: bpf_fib_lookup reads them, and the
        // kernel takes what the programs hand back (ARP, TTL expiry).
        ip_batch(netns, remote_routes(topology, node, datapath == Datapath::tunnel));
        if (datapath == Datapath::ebpf_tunnel) {
            ip_batch(netns,
                     fmt::format("link add {} type vxlan external dstport {}\n"
                                 "link set {} mtu {} up\n",
                                 kMetadataVxlan, kVxlanPort, kMetadataVxlan, Topology::kTunnelMtu));
        }
    }
    set_pod_mtu(topology, is_tunnel(datapath) ? Topology::kTunnelMtu : Topology::kMtu);
    if (!is_ebpf(datapath)) {
        return;
    }
    for (const auto& node : topology.nodes()) {
        const auto hooks = node_hooks(topology, node, datapath);
        RouterStage router(topology, node);
        router.load(hooks);
        attach_stage(hooks, router);
    }
}

}  // namespace

std::string_view to_string(Datapath datapath) {
    return kNames[static_cast<int>(datapath)];
}

Datapath parse_datapath(std::string_view text) {
    for (const auto datapath : all_datapaths()) {
        if (to_string(datapath) == text) {
            return datapath;
        }
    }
    throw std::invalid_argument(
        fmt::format("unknown datapath '{}' (use native, tunnel, ebpf or ebpf-tunnel)", text));
}

const std::vector<Datapath>& all_datapaths() {
    static const std::vector<Datapath> kAll = {Datapath::native, Datapath::tunnel, Datapath::ebpf,
                                               Datapath::ebpf_tunnel};
    return kAll;
}

std::string node_pin_dir(const Topology& topology, const Node& node) {
    return (pin_dir(topology.lab_name()) / node.name).string();
}

NodeHooks node_hooks(const Topology& topology, const Node& node, Datapath datapath) {
    NodeHooks hooks{
        topology.netns(node.name), node_pin_dir(topology, node), {}, kUnderlayDevice, ""};
    if (datapath == Datapath::tunnel) {
        hooks.overlay = kKernelVxlan;
    }
    if (datapath == Datapath::ebpf_tunnel) {
        hooks.overlay = kMetadataVxlan;
    }
    for (const auto* pod : topology.pods_on(node)) {
        hooks.container_devices.push_back(pod->device);
    }
    return hooks;
}

void build_network(const Topology& topology) {
    for (const auto& netns : topology.all_netns()) {
        run_checked({"ip", "netns", "add", netns});
    }

    // The underlay: one bridge joining every node and the client, like a flat L2 network.
    const auto underlay = topology.netns(Topology::kUnderlay);
    std::string script = "link set lo up\nlink add br0 type bridge\nlink set br0 up\n";
    for (const auto& node : topology.nodes()) {
        script += fmt::format("link add {} type veth peer name {} netns {}\n", node.name,
                              kUnderlayDevice, topology.netns(node.name));
        script += fmt::format("link set {} master br0\nlink set {} up\n", node.name, node.name);
    }
    const auto& client = topology.pod(Topology::kClientPod);
    script += fmt::format("link add {} type veth peer name eth0 netns {}\n", client.device,
                          topology.netns(client.name));
    script += fmt::format("link set {} master br0\nlink set {} up\n", client.device, client.device);
    ip_batch(underlay, script);

    for (const auto& node : topology.nodes()) {
        const auto netns = topology.netns(node.name);
        std::string node_script = fmt::format(
            "link set lo up\nlink add {0} type veth peer name {1}\naddr add {2}/32 dev {0}\n"
            "link set {0} up\nlink set {1} up\naddr add {3}/{4} dev {5}\nlink set {5} up\n",
            kHostDevice, kHostPeerDevice, node.router_ip.str(), node.underlay_ip.str(),
            Topology::kUnderlayPrefixLength, kUnderlayDevice);
        for (const auto* pod : topology.pods_on(node)) {
            node_script += fmt::format(
                "link add {0} address {1} type veth peer name eth0 address {2} netns {3}\n"
                "link set {0} up\nroute add {4}/32 dev {0}\n",
                pod->device, lxc_mac(*pod), pod_mac(*pod), topology.netns(pod->name),
                pod->ip.str());
        }
        ip_batch(netns, node_script);
        write_sysctl(netns, "net/ipv4/ip_forward", "1");
        for (const auto* pod : topology.pods_on(node)) {
            ip_batch(topology.netns(pod->name),
                     fmt::format("link set lo up\naddr add {0}/32 dev eth0\nlink set eth0 up\n"
                                 "route add {1} dev eth0 scope link\n"
                                 "route add default via {1} dev eth0\n",
                                 pod->ip.str(), node.router_ip.str()));
        }
    }

    // The client stands for the outside world: it reaches each node's pods through that node,
    // as a router that learnt the pod CIDRs would.
    std::string client_script = fmt::format(
        "link set lo up\naddr add {}/{} dev eth0\n"
        "link set eth0 up\n",
        client.ip.str(), Topology::kUnderlayPrefixLength);
    for (const auto& node : topology.nodes()) {
        client_script += fmt::format("route add {}/{} via {}\n", node.pod_cidr.str(),
                                     Topology::kPodPrefixLength, node.underlay_ip.str());
    }
    ip_batch(topology.netns(client.name), client_script);
}

void apply_datapath(const Topology& topology, std::optional<Datapath> from, Datapath to) {
    if (from) {
        teardown(topology, *from);
    }
    setup(topology, to);
}

std::uint64_t kernel_forwarded(const std::string& netns) {
    return in_netns(netns, [&] {
        // thread-self: /proc/self/net would show the main thread's namespace.
        std::ifstream snmp("/proc/thread-self/net/snmp");
        std::string header, values;
        while (std::getline(snmp, header) && std::getline(snmp, values)) {
            if (header.rfind("Ip:", 0) != 0) {
                continue;
            }
            std::istringstream names(header), numbers(values);
            std::string name, number;
            while (names >> name && numbers >> number) {
                if (name == "ForwDatagrams") {
                    return std::stoull(number);
                }
            }
        }
        throw std::runtime_error("no IpForwDatagrams in /proc/net/snmp of " + netns);
    });
}

}  // namespace calcmesh::lab
