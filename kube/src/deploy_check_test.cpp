#include "calcmesh/kube/deploy_check.hpp"

#include <gtest/gtest.h>

#include <fstream>

namespace calcmesh::kube {
namespace {

/// A worker Deployment running the real worker binary, configured by a ConfigMap.
std::string worker(const std::string& cluster, const std::string& extra_config = "",
                   int container_port = 8091) {
    return R"(apiVersion: v1
kind: ConfigMap
metadata: {name: worker-config, namespace: calcmesh}
data:
  CALCMESH_LISTEN_ADDRESS: 0.0.0.0
  CALCMESH_OPERATION: addition
  CALCMESH_PORT: "8091"
  CALCMESH_CLUSTER: )" +
           cluster + "\n" + extra_config + R"(
  CALCMESH_LOG_COLLECTOR_URL: http://log-collector:8082
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: addition-worker
  namespace: calcmesh
  labels: {app.kubernetes.io/name: addition-worker}
spec:
  selector: {matchLabels: {app.kubernetes.io/name: addition-worker}}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: addition-worker
        app.kubernetes.io/component: worker
        app.kubernetes.io/part-of: calcmesh
    spec:
      containers:
        - name: worker
          image: localhost/calcmesh:0.1.0
          command: [/usr/local/bin/worker]
          ports: [{name: http, containerPort: )" +
           std::to_string(container_port) + R"(}]
          envFrom: [{configMapRef: {name: worker-config}}]
          env:
            - name: CALCMESH_INSTANCE
              valueFrom: {fieldRef: {fieldPath: metadata.name}}
          readinessProbe: {httpGet: {path: /readyz, port: http}}
          livenessProbe: {httpGet: {path: /healthz, port: http}}
)";
}

std::string service(const std::string& name, int port, bool global,
                    const std::string& selector_name = "") {
    return "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name +
           "\n  namespace: calcmesh\n" +
           (global ? "  annotations: {service.cilium.io/global: \"true\"}\n" : "") +
           "spec:\n  selector: {app.kubernetes.io/name: " +
           (selector_name.empty() ? name : selector_name) +
           "}\n  ports: [{name: http, port: " + std::to_string(port) + ", targetPort: http}]\n";
}

/// log-collector's pods, as a plain container (not the calcmesh image).
const std::string kLogCollector = R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: log-collector, namespace: calcmesh}
spec:
  selector: {matchLabels: {app.kubernetes.io/name: log-collector}}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: log-collector
        app.kubernetes.io/component: log-store
        app.kubernetes.io/part-of: calcmesh
    spec:
      containers: [{name: c, image: other:1, ports: [{name: http, containerPort: 8082}]}]
)";

Cluster cluster(const std::string& file, const std::vector<std::string>& documents) {
    std::string yaml;
    for (const auto& document : documents) {
        yaml += (yaml.empty() ? "" : "---\n") + document;
    }
    auto parsed = parse_cluster(file, yaml);
    EXPECT_TRUE(parsed.has_value()) << (parsed ? "" : parsed.error().message);
    return parsed ? std::move(parsed).value() : Cluster{};
}

/// c1 runs log-collector; c3 runs the worker, which calls log-collector across the mesh.
Mesh two_clusters(const std::string& c1_service, const std::string& c3_service,
                  const std::string& worker_yaml = worker("c3")) {
    Mesh mesh;
    mesh.clusters.push_back(cluster("c1.yaml", {kLogCollector, c1_service}));
    std::vector<std::string> c3 = {worker_yaml, service("addition-worker", 8091, true)};
    if (!c3_service.empty()) {
        c3.push_back(c3_service);
    }
    mesh.clusters.push_back(cluster("c3.yaml", c3));
    return mesh;
}

std::string joined(const std::vector<Finding>& findings) {
    std::string text;
    for (const auto& finding : findings) {
        text += finding.to_string() + "\n";
    }
    return text;
}

const std::string kGlobalLogCollector = service("log-collector", 8082, true);

TEST(DeployCheck, AGlobalServiceOnBothSidesPasses) {
    const Mesh mesh = two_clusters(kGlobalLogCollector, kGlobalLogCollector);
    EXPECT_EQ(joined(check_pod_labels(mesh)), "");
    EXPECT_EQ(joined(check_selectors(mesh)), "");
    EXPECT_EQ(joined(check_calls(mesh)), "");
}

TEST(DeployCheck, LabelsOnTheDeploymentOnlyAreNamed) {
    std::string moved = worker("c3");
    moved.replace(moved.find("        app.kubernetes.io/component: worker\n"), 43, "");
    const Mesh mesh = two_clusters(kGlobalLogCollector, kGlobalLogCollector, moved);
    EXPECT_EQ(joined(check_pod_labels(mesh)),
              "c3.yaml: Deployment calcmesh/addition-worker: spec.template.metadata.labels: "
              "missing app.kubernetes.io/component\n");
    std::string only_on_deployment = worker("c3");
    only_on_deployment.replace(only_on_deployment.find("  labels: {app.kubernetes.io/name:"), 35,
                               "  labels: {app.kubernetes.io/part-of: calcmesh, x:");
    only_on_deployment.replace(only_on_deployment.find("        app.kubernetes.io/part-of"), 43,
                               "");
    EXPECT_EQ(
        joined(check_pod_labels(
            two_clusters(kGlobalLogCollector, kGlobalLogCollector, only_on_deployment))),
        "c3.yaml: Deployment calcmesh/addition-worker: spec.template.metadata.labels: missing "
        "app.kubernetes.io/part-of: it is on the Deployment only, and Services and policies "
        "select pods by the labels of the pod template\n");
}

TEST(DeployCheck, ASelectorTypoIsCaught) {
    const Mesh mesh =
        two_clusters(service("log-collector", 8082, true, "log-colector"), kGlobalLogCollector);
    const auto text = joined(check_selectors(mesh));
    EXPECT_NE(text.find("c1.yaml: Service calcmesh/log-collector: spec.selector: selects no pod "
                        "in any cluster of the mesh"),
              std::string::npos)
        << text;
}

TEST(DeployCheck, ACallingClusterNeedsTheServiceAndBothSidesNeedGlobal) {
    EXPECT_EQ(joined(check_calls(two_clusters(kGlobalLogCollector, ""))),
              "c3.yaml: ConfigMap calcmesh/worker-config: data.CALCMESH_LOG_COLLECTOR_URL: "
              "addition-worker "
              "calls log-collector:8082 but c3.yaml has no Service calcmesh/log-collector, so the "
              "name does not resolve in c3\n");
    EXPECT_EQ(joined(check_calls(
                  two_clusters(service("log-collector", 8082, false), kGlobalLogCollector))),
              "c1.yaml: Service calcmesh/log-collector: metadata.annotations: c3 calls it across "
              "the mesh (log-collector:8082), so it needs service.cilium.io/global: \"true\"\n");
    const auto local_stub = joined(
        check_calls(two_clusters(kGlobalLogCollector, service("log-collector", 8082, false))));
    EXPECT_NE(local_stub.find("c3.yaml: Service calcmesh/log-collector: metadata.annotations: "
                              "its pods run in c1 only"),
              std::string::npos)
        << local_stub;
    const auto wrong_port =
        joined(check_calls(two_clusters(kGlobalLogCollector, service("log-collector", 80, true))));
    EXPECT_NE(wrong_port.find("has no port 8082"), std::string::npos) << wrong_port;
}

TEST(DeployCheck, AnAdvertisedAddressMustResolveWhereTheClientsAre) {
    const std::string broker = R"(apiVersion: apps/v1
kind: StatefulSet
metadata: {name: kafka, namespace: calcmesh}
spec:
  selector: {matchLabels: {app.kubernetes.io/name: kafka}}
  template:
    metadata: {labels: {app.kubernetes.io/name: kafka}}
    spec:
      containers:
        - name: kafka
          image: apache/kafka:4.4.0
          ports: [{name: kafka, containerPort: 9092}]
          env: [{name: KAFKA_ADVERTISED_LISTENERS, value: "PLAINTEXT://BROKER_HOST:9092"}]
)";
    const std::string kafka0 = R"(apiVersion: v1
kind: Service
metadata:
  name: kafka-0
  namespace: calcmesh
  annotations: {service.cilium.io/global: "true"}
spec:
  selector: {app.kubernetes.io/name: kafka, statefulset.kubernetes.io/pod-name: kafka-0}
  ports: [{port: 9092, targetPort: kafka}]
)";
    const std::string client = R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: client, namespace: calcmesh}
spec:
  selector: {matchLabels: {app.kubernetes.io/name: client}}
  template:
    metadata: {labels: {app.kubernetes.io/name: client}}
    spec:
      containers:
        - name: c
          image: other:1
          env: [{name: CALCMESH_KAFKA_BOOTSTRAP_SERVERS, value: "kafka-0.calcmesh.svc:9092"}]
)";
    auto mesh_advertising = [&](const std::string& advertised) {
        std::string server = broker;
        server.replace(server.find("BROKER_HOST"), 11, advertised);
        Mesh mesh;
        mesh.clusters.push_back(cluster("c1.yaml", {client, kafka0}));
        mesh.clusters.push_back(
            cluster("c2.yaml", {server, kafka0,
                                "apiVersion: v1\nkind: Service\nmetadata: {name: kafka, namespace: "
                                "calcmesh}\nspec:\n  clusterIP: None\n  selector: "
                                "{app.kubernetes.io/name: kafka}\n  ports: [{port: 9092}]\n"}));
        return mesh;
    };
    EXPECT_EQ(joined(check_calls(mesh_advertising("kafka-0.calcmesh.svc.cluster.local"))), "");
    EXPECT_EQ(joined(check_calls(mesh_advertising("kafka-0.kafka.calcmesh.svc.cluster.local"))),
              "c2.yaml: StatefulSet calcmesh/kafka: spec.template.spec.containers[0].env[0]: "
              "kafka (c2) advertises to client in c1 kafka-0.kafka.calcmesh.svc.cluster.local:9092 "
              "but c1.yaml has no Service calcmesh/kafka, so the name does not resolve in c1\n");
}

TEST(DeployCheck, TheBinaryJudgesKeysPortsAddressAndCluster) {
    const ImageSpec image{"Dockerfile", {"/usr/local/bin/worker"}};
    const std::filesystem::path bin = CALCMESH_BIN_DIR;
    auto findings_for = [&](const std::string& worker_yaml) {
        return joined(check_binaries(
            two_clusters(kGlobalLogCollector, kGlobalLogCollector, worker_yaml), image, bin));
    };
    EXPECT_EQ(findings_for(worker("c3")), "");
    EXPECT_EQ(
        findings_for(worker("c3", "  CALCMESH_LOG_LEVL: debug")),
        "c3.yaml: ConfigMap calcmesh/worker-config: data.CALCMESH_LOG_LEVL: CALCMESH_LOG_LEVL is "
        "not a "
        "configuration key of worker (see worker --print-config)\n");
    EXPECT_EQ(findings_for(worker("c3", "", 8080)),
              "c3.yaml: Deployment calcmesh/addition-worker: "
              "spec.template.spec.containers[0].ports[0].containerPort: 8080, but worker listens "
              "on 8091 (CALCMESH_PORT)\n");
    EXPECT_EQ(findings_for(worker("c1")),
              "c3.yaml: Deployment calcmesh/addition-worker: spec.template.spec.containers[0]: "
              "worker reports cluster 'c1', but c3.yaml is cluster c3: set CALCMESH_CLUSTER\n");
    std::string loopback = worker("c3");
    loopback.replace(loopback.find("0.0.0.0"), 7, "127.0.0.1");
    EXPECT_NE(findings_for(loopback).find("worker listens on '127.0.0.1'"), std::string::npos);
    std::string bad_value = worker("c3");
    bad_value.replace(bad_value.find("addition\n"), 8, "modulo");
    EXPECT_NE(findings_for(bad_value).find("worker --print-config failed"), std::string::npos);
    EXPECT_EQ(
        joined(check_binaries(two_clusters(kGlobalLogCollector, kGlobalLogCollector),
                              ImageSpec{"Dockerfile", {"/usr/local/bin/job_submitter"}}, bin)),
        "c3.yaml: Deployment calcmesh/addition-worker: "
        "spec.template.spec.containers[0].command[0]: /usr/local/bin/worker is not copied "
        "into the image by Dockerfile\n");
}

TEST(DeployCheck, TheDockerfileListsTheBinariesOfItsLastStage) {
    auto image = load_dockerfile(std::filesystem::path(CALCMESH_SOURCE_DIR) / "deploy/Dockerfile");
    ASSERT_TRUE(image.has_value()) << image.error().message;
    EXPECT_EQ(image.value().entrypoints,
              (std::vector<std::string>{"/usr/local/bin/worker", "/usr/local/bin/job_submitter",
                                        "/usr/local/bin/help_page", "/usr/local/bin/log_collector",
                                        "/usr/local/bin/lab_perf"}));
    EXPECT_TRUE(is_calcmesh_image("localhost/calcmesh:0.1.0"));
    EXPECT_TRUE(is_calcmesh_image("123.dkr.ecr.eu-west-1.amazonaws.com/calcmesh@sha256:ab"));
    EXPECT_FALSE(is_calcmesh_image("apache/kafka:4.4.0"));
    EXPECT_FALSE(is_calcmesh_image("calcmesh-tools:1"));
}

TEST(DeployCheck, CiliumIdentitiesAndAddressesAreUniqueAndCovered) {
    auto values = [](const std::string& name, int id, const std::string& pool, int node_port) {
        CiliumValues result;
        result.files = {name + ".yaml"};
        result.cluster_name = name;
        result.cluster_id = id;
        result.pod_cidrs = {Cidr::parse(pool).value()};
        result.clustermesh_node_port = node_port;
        return result;
    };
    Mesh mesh;
    mesh.clusters.push_back(cluster("c1.yaml", {}));
    mesh.clusters.push_back(cluster("c3.yaml", {}));
    CiliumValues native;
    native.files = {"datapath-native.yaml"};
    native.routing_mode = "native";
    native.native_routing_cidr = Cidr::parse("10.0.0.0/14").value();
    EXPECT_EQ(joined(check_cilium(mesh,
                                  {{"c1", values("c1", 1, "10.1.0.0/16", 32379)},
                                   {"c3", values("c3", 3, "10.3.0.0/16", 32381)}},
                                  {native})),
              "");
    EXPECT_EQ(joined(check_cilium(mesh,
                                  {{"c1", values("c1", 1, "10.1.0.0/16", 32379)},
                                   {"c3", values("c3", 1, "10.1.0.0/20", 32379)}},
                                  {})),
              "c3.yaml: cluster.id: 1 is also the id of c1\n"
              "c3.yaml: clustermesh.apiserver.service.nodePort: 32379 is also used by c1 "
              "(cilium/cilium#24692)\n"
              "c3.yaml: ipam.operator.clusterPoolIPv4PodCIDRList: 10.1.0.0/20 overlaps "
              "10.1.0.0/16 of c1\n");
    EXPECT_EQ(joined(check_cilium(mesh,
                                  {{"c1", values("c1", 1, "10.1.0.0/16", 0)},
                                   {"c3", values("C3", 300, "10.5.0.0/16", 0)}},
                                  {native})),
              "C3.yaml: cluster.name: 'C3', but the manifests are for c3 (c3.yaml)\n"
              "C3.yaml: cluster.name: 'C3' is not 1 to 32 lowercase letters, digits and '-'\n"
              "C3.yaml: cluster.id: 300 is not in 1..255\n"
              "datapath-native.yaml: ipv4NativeRoutingCIDR: 10.0.0.0/14 does not cover "
              "10.5.0.0/16 of c3\n");
}

}  // namespace
}  // namespace calcmesh::kube
