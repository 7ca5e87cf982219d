#include "calcmesh/lab/topology.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace calcmesh::lab {

namespace {

constexpr std::uint32_t ipv4(int a, int b, int c, int d) {
    return static_cast<std::uint32_t>(a << 24 | b << 16 | c << 8 | d);
}

// Pod CIDRs: cluster k owns 198.18.(16k).0/20, its node n the /24 198.18.(16k+n).0.
// Underlay: 198.19.0.0/24 with node n of cluster k at .(10k+n); overlay 198.19.1.0/24 alike.
constexpr std::uint32_t kUnderlayBase = ipv4(198, 19, 0, 0);
constexpr std::uint32_t kOverlayBase = ipv4(198, 19, 1, 0);
constexpr std::uint32_t kClientAddress = ipv4(198, 19, 0, 100);

struct PodPlacement {
    std::string_view name;
    std::string_view device;
    std::string_view node;
    std::string_view component;  ///< app.kubernetes.io/component in the deployment kit
};

// Cluster 1 serves the users, cluster 2 runs Kafka, 3a and 3b the workers spread over both
// nodes so that calls also cross nodes inside a cluster.
constexpr PodPlacement kPlacements[] = {
    {"job-submitter", "lxc-js", "c1n1", "frontend"},
    {"help-page", "lxc-help", "c1n1", "frontend"},
    {"log-collector", "lxc-logs", "c1n2", "log-store"},
    {"kafka", "lxc-kafka", "c2n1", "broker"},
    {"addition-worker", "lxc-add", "c3an1", "worker"},
    {"subtraction-worker", "lxc-sub", "c3an2", "worker"},
    {"multiplication-worker", "lxc-mul", "c3bn1", "worker"},
    {"division-worker", "lxc-div", "c3bn2", "worker"},
};

std::string mac_from(std::uint8_t first, Ipv4 address) {
    const auto v = address.value;
    return fmt::format("{:02x}:00:{:02x}:{:02x}:{:02x}:{:02x}", first, v >> 24, (v >> 16) & 0xff,
                       (v >> 8) & 0xff, v & 0xff);
}

bool valid_lab_name(const std::string& name) {
    if (name.empty() || name.size() > 12 || name[0] < 'a' || name[0] > 'z') {
        return false;
    }
    return std::all_of(name.begin(), name.end(),
                       [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); });
}

}  // namespace

std::string Ipv4::str() const {
    return fmt::format("{}.{}.{}.{}", value >> 24, (value >> 16) & 0xff, (value >> 8) & 0xff,
                       value & 0xff);
}

std::uint32_t Ipv4::network_order() const {
    return htonl(value);
}

Topology::Topology(std::string lab_name) : lab_name_(std::move(lab_name)) {
    if (!valid_lab_name(lab_name_)) {
        throw std::invalid_argument(fmt::format(
            "lab name '{}': use 1 to 12 lower-case letters or digits, starting with a letter",
            lab_name_));
    }
    clusters_ = {{1, "c1-client"}, {2, "c2-kafka"}, {3, "c3a-workers"}, {4, "c3b-workers"}};
    const char* node_prefix[] = {"c1", "c2", "c3a", "c3b"};
    for (const auto& cluster : clusters_) {
        for (int n = 1; n <= 2; ++n) {
            const int third = 16 * cluster.id + n;
            const int host = 10 * cluster.id + n;
            nodes_.push_back({fmt::format("{}n{}", node_prefix[cluster.id - 1], n), cluster.id,
                              Ipv4{ipv4(198, 18, third, 0)}, Ipv4{ipv4(198, 18, third, 1)},
                              Ipv4{kUnderlayBase | host}, Ipv4{kOverlayBase | host}});
        }
    }
    for (const auto& placement : kPlacements) {
        const auto& on = node(placement.node);
        const auto count = static_cast<std::uint32_t>(pods_on(on).size());
        Labels labels{{"app.kubernetes.io/name", std::string(placement.name)},
                      {"app.kubernetes.io/component", std::string(placement.component)},
                      {"app.kubernetes.io/part-of", "calcmesh"}};
        pods_.push_back({std::string(placement.name), std::string(placement.device), on.name,
                         Ipv4{on.pod_cidr.value + 10 + count}, std::move(labels)});
    }
    pods_.push_back(
        {std::string(kClientPod), std::string(kClientPod), "", Ipv4{kClientAddress}, {}});
}

const Pod& Topology::pod(std::string_view name) const {
    for (const auto& pod : pods_) {
        if (pod.name == name) {
            return pod;
        }
    }
    std::string known;
    for (const auto& pod : pods_) {
        known += (known.empty() ? "" : ", ") + pod.name;
    }
    throw std::invalid_argument(fmt::format("unknown pod '{}' (pods: {})", name, known));
}

const Node& Topology::node(std::string_view name) const {
    for (const auto& node : nodes_) {
        if (node.name == name) {
            return node;
        }
    }
    throw std::invalid_argument(fmt::format("unknown node '{}'", name));
}

const Cluster& Topology::cluster(int id) const {
    return clusters_.at(id - 1);
}

std::vector<const Pod*> Topology::pods_on(const Node& node) const {
    std::vector<const Pod*> result;
    for (const auto& pod : pods_) {
        if (pod.node == node.name) {
            result.push_back(&pod);
        }
    }
    return result;
}

std::string Topology::netns(std::string_view object) const {
    return fmt::format("{}-{}", lab_name_, object);
}

std::vector<std::string> Topology::all_netns() const {
    std::vector<std::string> names{netns(kUnderlay)};
    for (const auto& node : nodes_) {
        names.push_back(netns(node.name));
    }
    for (const auto& pod : pods_) {
        names.push_back(netns(pod.name));
    }
    return names;
}

std::string Topology::netns_of(std::string_view object) const {
    if (object == kUnderlay) {
        return netns(object);
    }
    for (const auto& node : nodes_) {
        if (node.name == object) {
            return netns(object);
        }
    }
    for (const auto& pod : pods_) {
        if (pod.name == object) {
            return netns(object);
        }
    }
    std::string known{kUnderlay};
    for (const auto& node : nodes_) {
        known += ", " + node.name;
    }
    for (const auto& pod : pods_) {
        known += ", " + pod.name;
    }
    throw std::invalid_argument(
        fmt::format("'{}' is neither a pod, a node nor the underlay (known: {})", object, known));
}

std::string Topology::hosts_file() const {
    std::string hosts = "127.0.0.1 localhost\n";
    for (const auto& pod : pods_) {
        hosts += fmt::format("{} {}\n", pod.ip.str(), pod.name);
    }
    return hosts;
}

std::string pod_mac(const Pod& pod) {
    return mac_from(0x02, pod.ip);
}
std::string lxc_mac(const Pod& pod) {
    return mac_from(0x06, pod.ip);
}
std::string overlay_mac(const Node& node) {
    return mac_from(0x0a, node.overlay_ip);
}

}  // namespace calcmesh::lab
