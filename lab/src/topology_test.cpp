#include "calcmesh/lab/topology.hpp"

#include <gtest/gtest.h>

#include <set>

namespace calcmesh::lab {
namespace {

bool inside(Ipv4 address, Ipv4 network, int prefix_length) {
    const auto mask = prefix_length == 0 ? 0u : ~0u << (32 - prefix_length);
    return (address.value & mask) == (network.value & mask);
}

const Ipv4 kBenchmarkRange{198u << 24 | 18u << 16};  // 198.18.0.0/15

TEST(Topology, EveryAddressIsUniqueAndInTheBenchmarkRange) {
    const Topology topology("cm");
    std::set<Ipv4> seen;
    const auto add = [&](Ipv4 address) {
        EXPECT_TRUE(inside(address, kBenchmarkRange, 15)) << address.str();
        EXPECT_TRUE(seen.insert(address).second) << "duplicate " << address.str();
    };
    for (const auto& node : topology.nodes()) {
        add(node.router_ip);
        add(node.underlay_ip);
        add(node.overlay_ip);
        EXPECT_TRUE(inside(node.router_ip, node.pod_cidr, Topology::kPodPrefixLength));
    }
    for (const auto& pod : topology.pods()) {
        add(pod.ip);
    }
    EXPECT_EQ(topology.nodes().size(), 8u);
    EXPECT_EQ(topology.clusters().size(), 4u);
}

TEST(Topology, PodCidrsNestPerNodeAndClusterWithoutOverlap) {
    const Topology topology("cm");
    for (const auto& node : topology.nodes()) {
        // Cluster k owns 198.18.(16k).0/20.
        const Ipv4 cluster_cidr{198u << 24 | 18u << 16 |
                                static_cast<unsigned>(16 * node.cluster_id) << 8};
        EXPECT_TRUE(inside(node.pod_cidr, cluster_cidr, 20)) << node.name;
        for (const auto& other : topology.nodes()) {
            if (&other != &node) {
                EXPECT_NE(node.pod_cidr, other.pod_cidr);
            }
        }
        for (const auto* pod : topology.pods_on(node)) {
            EXPECT_TRUE(inside(pod->ip, node.pod_cidr, Topology::kPodPrefixLength)) << pod->name;
            EXPECT_LE(pod->device.size(), 15u) << pod->device;
        }
    }
}

TEST(Topology, WorkersSpreadOverBothNodesOfTheirClusters) {
    const Topology topology("cm");
    EXPECT_NE(topology.pod("addition-worker").node, topology.pod("subtraction-worker").node);
    EXPECT_NE(topology.pod("multiplication-worker").node, topology.pod("division-worker").node);
    EXPECT_EQ(topology.node(topology.pod("kafka").node).cluster_id, 2);
    EXPECT_EQ(topology.node(topology.pod("job-submitter").node).cluster_id, 1);
}

TEST(Topology, NamesCarryTheLabPrefix) {
    const Topology topology("t42");
    for (const auto& netns : topology.all_netns()) {
        EXPECT_EQ(netns.rfind("t42-", 0), 0u) << netns;
    }
    EXPECT_EQ(topology.netns_of("c3an2"), "t42-c3an2");
    EXPECT_THROW(topology.netns_of("nope"), std::invalid_argument);
    EXPECT_NE(topology.hosts_file().find(topology.pod("kafka").ip.str() + " kafka\n"),
              std::string::npos);
}

TEST(Topology, RejectsLabNamesThatCannotPrefixNamespaces) {
    for (const char* bad : {"", "Upper", "1abc", "with-dash", "waytoolongname"}) {
        EXPECT_THROW(Topology{bad}, std::invalid_argument) << bad;
    }
}

}  // namespace
}  // namespace calcmesh::lab
