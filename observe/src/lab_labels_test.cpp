// The lab's pods carry the labels of the deployment kit's pod templates, so that the same
// policy files select the same workloads in the lab and in the clusters. Reads the kit as
// `deploy/render` renders it (the deploy_rendered test fixture).
#include <gtest/gtest.h>

#include "calcmesh/kube/model.hpp"
#include "calcmesh/lab/identity.hpp"

namespace calcmesh::lab {
namespace {

TEST(LabLabels, MatchTheDeploymentKitsPodTemplates) {
    const auto mesh = kube::load_mesh(CALCMESH_RENDERED_DIR);
    ASSERT_TRUE(mesh.has_value()) << mesh.error().message;
    const Topology topology("cm");
    const Identities identities(topology);
    for (const auto& pod : identities.pods()) {
        SCOPED_TRACE(pod.cluster + "/" + pod.pod);
        const auto* cluster = mesh.value().find(pod.cluster);
        ASSERT_NE(cluster, nullptr) << "the kit has no cluster " << pod.cluster;
        const auto* workload = static_cast<const kube::Workload*>(nullptr);
        for (const auto& candidate : cluster->workloads) {
            if (candidate.pod_labels.contains("app.kubernetes.io/name") &&
                candidate.pod_labels.at("app.kubernetes.io/name") == pod.pod) {
                workload = &candidate;
            }
        }
        ASSERT_NE(workload, nullptr) << "no workload of the kit runs " << pod.pod;
        EXPECT_EQ(workload->id.namespace_, pod.namespace_);
        EXPECT_EQ(workload->pod_labels, topology.pod(pod.pod).labels);
    }
}

}  // namespace
}  // namespace calcmesh::lab
