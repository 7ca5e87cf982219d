#include "calcmesh/lab/identity.hpp"

#include <gtest/gtest.h>

#include <set>

namespace calcmesh::lab {
namespace {

TEST(Identity, EqualLabelSetsShareOneIdentityPerCluster) {
    const Labels web{{"app", "web"}};
    const Labels db{{"app", "db"}};
    const auto ids = allocate_identities({{1, web}, {1, db}, {1, web}, {2, web}});
    EXPECT_EQ(ids[0], ids[2]);
    EXPECT_NE(ids[0], ids[1]);
    // The same labels in another cluster are another identity, with the cluster id on top.
    EXPECT_NE(ids[0], ids[3]);
    EXPECT_EQ(ids[0] >> 16, 1u);
    EXPECT_EQ(ids[3] >> 16, 2u);
    for (const auto id : ids) {
        EXPECT_GE(id & 0xffff, kFirstClusterIdentity);
    }
}

TEST(Identity, PodsCarryTheDeploymentKitsLabelsWithNamespaceAndCluster) {
    const Topology topology("cm");
    const Identities identities(topology);
    ASSERT_EQ(identities.pods().size(), topology.pods().size() - 1);  // the client is the world
    std::set<std::uint32_t> seen;
    for (const auto& pod : identities.pods()) {
        EXPECT_EQ(pod.labels.at("app.kubernetes.io/name"), pod.pod);
        EXPECT_EQ(pod.labels.at("app.kubernetes.io/part-of"), "calcmesh");
        EXPECT_TRUE(pod.labels.contains("app.kubernetes.io/component"));
        EXPECT_EQ(pod.labels.at(kClusterLabel), pod.cluster);
        EXPECT_EQ(pod.labels.at(kNamespaceLabel), "calcmesh");
        EXPECT_EQ(identities.cluster_of(pod.identity), pod.cluster);
        EXPECT_TRUE(seen.insert(pod.identity).second) << pod.pod;
    }
    EXPECT_EQ(identities.pods().front().label_strings().front(),
              "k8s:app.kubernetes.io/component=frontend");
    EXPECT_EQ(topology.pod("kafka").labels.at("app.kubernetes.io/component"), "broker");
    EXPECT_EQ(topology.pod("division-worker").labels.at("app.kubernetes.io/component"), "worker");
}

TEST(Identity, AddressesResolveToPodsNodesOrTheWorld) {
    const Topology topology("cm");
    const Identities identities(topology);
    const auto worker = identities.resolve(topology.pod("addition-worker").ip, "c1n1");
    EXPECT_EQ(worker.pod, "addition-worker");
    EXPECT_EQ(worker.cluster, "c3a-workers");
    EXPECT_EQ(worker.identity, identities.of_pod("addition-worker"));

    const auto& node = topology.node("c1n1");
    EXPECT_EQ(identities.resolve(node.underlay_ip, "c1n1").identity, kIdentityHost);
    EXPECT_EQ(identities.resolve(node.router_ip, "c2n1").identity, kIdentityRemoteNode);
    const auto client = identities.resolve(topology.pod("client").ip, "c1n1");
    EXPECT_EQ(client.identity, kIdentityWorld);
    EXPECT_EQ(client.label_strings(), std::vector<std::string>{"reserved:world"});
    EXPECT_THROW(identities.of_pod("client"), std::invalid_argument);
    EXPECT_EQ(identities.cluster_of(kIdentityWorld), "");
}

}  // namespace
}  // namespace calcmesh::lab
