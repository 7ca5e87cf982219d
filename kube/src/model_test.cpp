#include "calcmesh/kube/model.hpp"

#include <gtest/gtest.h>

namespace calcmesh::kube {
namespace {

constexpr const char* kManifests = R"(apiVersion: v1
kind: ConfigMap
metadata: {name: app-config, namespace: demo}
data:
  CALCMESH_PORT: "8091"
  CALCMESH_LOG_LEVEL: info
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: demo
  labels: {app.kubernetes.io/name: app, team: x}
spec:
  replicas: 2
  selector:
    matchLabels: {app.kubernetes.io/name: app}
  template:
    metadata:
      labels: {app.kubernetes.io/name: app, tier: back}
    spec:
      containers:
        - name: main
          image: localhost/calcmesh:0.1.0
          command: [/usr/local/bin/worker]
          ports: [{name: http, containerPort: 8091}]
          envFrom: [{configMapRef: {name: app-config}}]
          env:
            - {name: CALCMESH_LOG_LEVEL, value: debug}
            - name: CALCMESH_NODE
              valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
          readinessProbe: {httpGet: {path: /readyz, port: http}}
      volumes:
        - {name: data, persistentVolumeClaim: {claimName: app-data}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: demo}
spec:
  replicas: 2
  serviceName: db
  selector: {matchLabels: {app.kubernetes.io/name: db}}
  template:
    metadata: {labels: {app.kubernetes.io/name: db}}
    spec:
      containers: [{name: db, image: db:1, ports: [{containerPort: 5432}]}]
---
apiVersion: v1
kind: Service
metadata:
  name: db-1
  namespace: demo
  annotations: {service.cilium.io/global: "true", service.cilium.io/affinity: remote}
spec:
  selector: {app.kubernetes.io/name: db, statefulset.kubernetes.io/pod-name: db-1}
  ports: [{port: 5432}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: deny, namespace: demo}
spec: {endpointSelector: {}}
)";

Cluster parse(const std::string& yaml) {
    auto cluster = parse_cluster("dir/c9-test.yaml", yaml);
    EXPECT_TRUE(cluster.has_value()) << (cluster ? "" : cluster.error().message);
    return cluster ? std::move(cluster).value() : Cluster{};
}

TEST(Model, ReadsEveryObjectAndNamesTheClusterAfterTheFile) {
    const Cluster cluster = parse(kManifests);
    EXPECT_EQ(cluster.name, "c9-test");
    EXPECT_EQ(cluster.file, "c9-test.yaml");
    ASSERT_EQ(cluster.objects.size(), 5U);
    EXPECT_EQ(cluster.objects[4].id.kind, "CiliumNetworkPolicy");
    EXPECT_EQ(cluster.objects[4].api_version, "cilium.io/v2");
    EXPECT_TRUE(cluster.objects[4].node["spec"]["endpointSelector"].IsMap());
    EXPECT_EQ(cluster.workloads.size(), 2U);
    EXPECT_EQ(cluster.services.size(), 1U);
    EXPECT_EQ(cluster.config_maps.size(), 1U);
}

TEST(Model, KeepsDeploymentLabelsApartFromPodTemplateLabels) {
    const Cluster cluster = parse(kManifests);
    const Workload* app = cluster.find_workload("demo", "app");
    ASSERT_NE(app, nullptr);
    EXPECT_EQ(app->labels.at("team"), "x");
    EXPECT_FALSE(app->pod_labels.contains("team"));
    EXPECT_EQ(app->pod_labels.at("tier"), "back");
    EXPECT_EQ(app->replicas, 2);
    ASSERT_EQ(app->containers.size(), 1U);
    const Container& main = app->containers[0];
    EXPECT_EQ(main.field, "spec.template.spec.containers[0]");
    EXPECT_EQ(main.resolve_port("http"), 8091);
    EXPECT_EQ(main.resolve_port("9000"), 9000);
    EXPECT_EQ(main.resolve_port("grpc"), std::nullopt);
    ASSERT_TRUE(main.readiness.has_value());
    EXPECT_EQ(main.readiness->path, "/readyz");
    EXPECT_EQ(app->volumes.at(0).claim_name, "app-data");
}

TEST(Model, StatefulSetPodsCarryThePodNameLabelsTheControllerAdds) {
    const Cluster cluster = parse(kManifests);
    const Service& service = cluster.services.at(0);
    const auto backends = cluster.backends(service);
    ASSERT_EQ(backends.size(), 1U);
    EXPECT_EQ(backends[0].pod.name, "db-1");
    EXPECT_EQ(backends[0].workload->id.name, "db");
    EXPECT_TRUE(service.global());
    EXPECT_TRUE(service.shared());
    EXPECT_EQ(service.affinity(), "remote");
    EXPECT_EQ(service.ports.at(0).target_port, "5432");
}

TEST(Model, SelectorsFollowKubernetesSemantics) {
    LabelSelector selector{{{"a", "1"}}, {{"b", "In", {"x", "y"}}, {"c", "DoesNotExist", {}}}};
    EXPECT_TRUE(selector.matches({{"a", "1"}, {"b", "y"}}));
    EXPECT_FALSE(selector.matches({{"a", "1"}, {"b", "z"}}));
    EXPECT_FALSE(selector.matches({{"a", "1"}, {"b", "x"}, {"c", ""}}));
    EXPECT_FALSE(selector.matches({{"a", "2"}, {"b", "x"}}));
    EXPECT_TRUE(LabelSelector{}.matches({{"anything", "goes"}}));
}

TEST(Model, EnvFromComesFirstAndEnvOverridesIt) {
    const Cluster cluster = parse(kManifests);
    const Workload& app = *cluster.find_workload("demo", "app");
    auto env = resolve_environment(cluster, app, app.containers[0]);
    ASSERT_TRUE(env.has_value()) << env.error().message;
    std::map<std::string, ResolvedVar> by_name;
    for (const auto& var : env.value()) {
        by_name[var.name] = var;
    }
    EXPECT_EQ(by_name.at("CALCMESH_PORT").value, "8091");
    EXPECT_EQ(by_name.at("CALCMESH_PORT").source,
              "c9-test.yaml: ConfigMap demo/app-config: data.CALCMESH_PORT");
    EXPECT_EQ(by_name.at("CALCMESH_LOG_LEVEL").value, "debug");
    EXPECT_EQ(by_name.at("CALCMESH_NODE").value, std::nullopt);
}

TEST(Model, AMissingConfigMapIsNamedWithTheFieldThatReferencesIt) {
    std::string yaml = kManifests;
    yaml.replace(yaml.find("{name: app-config}}"), 19, "{name: app-cfg}}");
    const Cluster cluster = parse(yaml);
    const Workload& app = *cluster.find_workload("demo", "app");
    auto env = resolve_environment(cluster, app, app.containers[0]);
    ASSERT_FALSE(env.has_value());
    EXPECT_EQ(env.error().message,
              "c9-test.yaml: Deployment demo/app: spec.template.spec.containers[0].envFrom[0]: no "
              "ConfigMap demo/app-cfg in c9-test.yaml");
}

TEST(Model, AWrongTypeFailsNamingFileObjectAndField) {
    std::string yaml = kManifests;
    yaml.replace(yaml.find("containerPort: 8091"), 19, "containerPort: \"8091\"");
    auto cluster = parse_cluster("c9-test.yaml", yaml);
    ASSERT_FALSE(cluster.has_value());
    EXPECT_EQ(cluster.error().message,
              "c9-test.yaml: Deployment demo/app: "
              "spec.template.spec.containers[0].ports[0].containerPort: expected an integer, got "
              "the string \"8091\"");
}

TEST(Model, NotYamlIsAnErrorNamingTheFile) {
    auto cluster = parse_cluster("bad.yaml", "a: [unclosed");
    ASSERT_FALSE(cluster.has_value());
    EXPECT_EQ(cluster.error().message.rfind("bad.yaml: not YAML", 0), 0U);
}

}  // namespace
}  // namespace calcmesh::kube
