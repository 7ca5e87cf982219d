#include "calcmesh/policy/policy.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "calcmesh/policy/inventory.hpp"
#include "calcmesh/policy/lint.hpp"

namespace calcmesh::policy {
namespace {

const std::string kValid = R"(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: worker, namespace: calcmesh}
spec:
  endpointSelector: {matchLabels: {k8s:app: worker}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: submitter, io.cilium.k8s.policy.cluster: c1}}]
      toPorts:
        - ports: [{port: "8091", protocol: TCP}]
          rules:
            http: [{method: GET, path: "/compute([?].*)?"}]
)";

/// The findings of one broken variant of kValid: `from` replaced by `to`.
std::vector<Finding> findings_of(const std::string& from, const std::string& to) {
    std::string yaml = kValid;
    const auto at = yaml.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    yaml.replace(at, from.size(), to);
    return parse_policies("c3.yaml", "c3", yaml).findings;
}

/// The one finding of a variant, as "where: message".
std::string finding(const std::string& from, const std::string& to) {
    const auto findings = findings_of(from, to);
    EXPECT_EQ(findings.size(), 1u) << findings.back().to_string();
    return findings.empty() ? "" : findings.front().to_string();
}

TEST(Parse, ReadsAValidPolicy) {
    const auto loaded = parse_policies("c3.yaml", "c3", kValid);
    ASSERT_TRUE(loaded.findings.empty()) << loaded.findings.front().to_string();
    ASSERT_EQ(loaded.set.policies.size(), 1u);
    const Policy& policy = loaded.set.policies[0];
    EXPECT_EQ(policy.cluster, "c3");
    ASSERT_EQ(policy.specs.size(), 1u);
    // "k8s:" is the label source: the selector means the label app.
    EXPECT_EQ(policy.specs[0].endpoint_selector.match_labels.at("app"), "worker");
    EXPECT_TRUE(policy.specs[0].default_deny_ingress);
    EXPECT_FALSE(policy.specs[0].default_deny_egress);
    const auto& port_rule = policy.specs[0].rules[0].to_ports[0];
    EXPECT_EQ(port_rule.rules->http[0].path, "/compute([?].*)?");
    EXPECT_EQ(port_rule.rules->http[0].field, "spec.ingress[0].toPorts[0].rules.http[0]");
}

TEST(Parse, NamesTheFieldOfEachMistake) {
    EXPECT_EQ(finding("fromEndpoints", "fromEndpoint"),
              "c3.yaml: CiliumNetworkPolicy calcmesh/worker: spec.ingress[0].fromEndpoint: "
              "unknown field (did you mean fromEndpoints?)");
    EXPECT_EQ(finding("port: \"8091\"", "port: 8091"),
              "c3.yaml: CiliumNetworkPolicy calcmesh/worker: spec.ingress[0].toPorts[0].ports[0]."
              "port: expected a string, got the integer 8091 (quote it: \"8091\")");
    EXPECT_TRUE(finding("path: \"/compute([?].*)?\"", "path: \"/compute([?].*\"")
                    .starts_with("c3.yaml: CiliumNetworkPolicy calcmesh/worker: spec.ingress[0]."
                                 "toPorts[0].rules.http[0].path: '/compute([?].*' is not a POSIX "
                                 "extended regular expression: "));
    EXPECT_EQ(finding(", protocol: TCP}", "}"),
              "c3.yaml: CiliumNetworkPolicy calcmesh/worker: spec.ingress[0].toPorts[0].ports[0]."
              "protocol: missing: L7 rules need the protocol (TCP), and omitted means ANY");
    EXPECT_EQ(finding("http: [{method: GET, path: \"/compute([?].*)?\"}]",
                      "kafka: [{role: consume, apiKey: fetch, topic: results}]"),
              "c3.yaml: CiliumNetworkPolicy calcmesh/worker: spec.ingress[0].toPorts[0].rules."
              "kafka[0]: role and apiKey are exclusive: a role already names its API keys");
    // Cilium knows the API keys up to alterconfigs (33) and refuses later ones.
    EXPECT_EQ(finding("http: [{method: GET, path: \"/compute([?].*)?\"}]",
                      "kafka: [{apiKey: createpartitions}]"),
              "c3.yaml: CiliumNetworkPolicy calcmesh/worker: spec.ingress[0].toPorts[0].rules."
              "kafka[0].apiKey: 'createpartitions' is not a Kafka API key name (e.g. produce, "
              "fetch, metadata, apiversions)");
    EXPECT_EQ(finding("  ingress:", "  egress: []\n  ingress:"),
              "c3.yaml: CiliumNetworkPolicy calcmesh/worker: spec.egress: an empty list neither "
              "allows anything nor turns default deny on; write [{}] to deny everything, or "
              "leave it out");
    EXPECT_EQ(finding("  ingress:\n", "  ingress:\n    - fromEntities: [everyone]\n"),
              "c3.yaml: CiliumNetworkPolicy calcmesh/worker: spec.ingress[0].fromEntities[0]: "
              "'everyone' is not an entity (host, remote-node, world, cluster, all, "
              "kube-apiserver, health, init, unmanaged, ingress)");
    EXPECT_EQ(finding(", namespace: calcmesh}", "}"),
              "c3.yaml: CiliumNetworkPolicy worker: metadata.namespace: missing: the "
              "policy would land in whatever namespace kubectl uses");
    EXPECT_EQ(finding("  ingress:", "  ingressDeny:"),
              "c3.yaml: CiliumNetworkPolicy calcmesh/worker: spec.ingressDeny[0].toPorts[0]."
              "rules: a deny rule cannot have L7 rules (Cilium rejects the policy)");
}

TEST(Parse, RejectsWhatCiliumRejects) {
    EXPECT_EQ(finding("http: [{method: GET, path: \"/compute([?].*)?\"}]",
                      "http: [{method: GET}]\n            dns: [{matchPattern: \"*\"}]"),
              "c3.yaml: CiliumNetworkPolicy calcmesh/worker: spec.ingress[0].toPorts[0].rules: "
              "http, kafka and dns rules cannot be mixed on one port (Cilium rejects the policy)");
    EXPECT_EQ(finding("protocol: TCP", "protocol: UDP"),
              "c3.yaml: CiliumNetworkPolicy calcmesh/worker: spec.ingress[0].toPorts[0].ports[0]."
              "protocol: http rules need TCP, not UDP");
    EXPECT_EQ(finding("fromEndpoints:", "fromCIDR: [10.0.0.0/8]\n      fromEndpoints:"),
              "c3.yaml: CiliumNetworkPolicy calcmesh/worker: spec.ingress[0].fromCIDR: a Cilium "
              "field that calcmesh policy does not evaluate; write the rule with the supported "
              "fields");
    EXPECT_EQ(finding("port: \"8091\"", "port: \"80_91\""),
              "c3.yaml: CiliumNetworkPolicy calcmesh/worker: spec.ingress[0].toPorts[0].ports[0]."
              "port: '80_91' is neither a port number (0-65535) nor a port name");
    // A policy with findings stays out of the set.
    EXPECT_TRUE(parse_policies("c3.yaml", "c3", "kind: Service\n").set.policies.empty());
}

/// Writes files into a fresh temporary folder, removed when it goes out of scope.
class TempDir {
  public:
    TempDir()
        : path_(std::filesystem::temp_directory_path() /
                ("policy_test_" + std::to_string(::getpid()))) {
        std::filesystem::remove_all(path_);
        std::filesystem::create_directories(path_);
    }
    ~TempDir() { std::filesystem::remove_all(path_); }
    std::filesystem::path write(const std::string& name, const std::string& text) const {
        const auto file = path_ / name;
        std::filesystem::create_directories(file.parent_path());
        std::ofstream(file) << text;
        return file;
    }

  private:
    std::filesystem::path path_;
};

TEST(Load, ALaterFileReplacesAPolicyOfTheSameName) {
    TempDir dir;
    const auto base = dir.write("base/c3.yaml", kValid);
    std::string other = kValid;
    other.replace(other.find("\"8091\""), 6, "\"8092\"");
    const auto overlay = dir.write("overlay/c3.yaml", other);
    const auto loaded = load_policies({base, overlay}, {"c1", "c3"});
    ASSERT_TRUE(loaded.findings.empty());
    ASSERT_EQ(loaded.set.policies.size(), 1u);
    EXPECT_EQ(loaded.set.policies[0].id.file, "overlay/c3.yaml");
    EXPECT_EQ(loaded.set.policies[0].specs[0].rules[0].to_ports[0].ports[0].port, "8092");
    ASSERT_EQ(loaded.replaced.size(), 1u);
    EXPECT_EQ(loaded.replaced[0],
              "overlay/c3.yaml replaces base/c3.yaml: CiliumNetworkPolicy calcmesh/worker in c3");

    const auto unknown = load_policies({dir.write("base/c9.yaml", kValid)}, {"c1", "c3"});
    ASSERT_EQ(unknown.findings.size(), 1u);
    EXPECT_NE(unknown.findings[0].message.find("no cluster 'c9'"), std::string::npos);
}

const std::string kManifests = R"(apiVersion: apps/v1
kind: Deployment
metadata:
  name: addition-worker
  namespace: calcmesh
  labels: {app.kubernetes.io/name: addition-worker, app.kubernetes.io/component: worker}
spec:
  selector: {matchLabels: {app.kubernetes.io/name: addition-worker}}
  template:
    metadata:
      labels: {app.kubernetes.io/name: addition-worker}
    spec:
      containers:
        - name: worker
          ports: [{name: http, containerPort: 8091}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: kafka, namespace: calcmesh}
spec:
  replicas: 2
  selector: {matchLabels: {app: kafka}}
  template:
    metadata: {labels: {app: kafka}}
    spec:
      containers: [{name: kafka, ports: [{name: kafka, containerPort: 9092}]}]
)";

TEST(Inventory, HasOneEndpointPerPodWithThePodTemplateLabels) {
    auto cluster = kube::parse_cluster("c3.yaml", kManifests);
    ASSERT_TRUE(cluster.has_value()) << cluster.error().message;
    const kube::Mesh mesh{{std::move(cluster).value()}};
    const Inventory inventory = endpoints_of(mesh);
    ASSERT_EQ(inventory.size(), 3u);
    EXPECT_EQ(inventory[0].to_string(), "c3/addition-worker");
    EXPECT_FALSE(inventory[0].labels.contains("app.kubernetes.io/component"));
    EXPECT_EQ(inventory[0].object_labels.at("app.kubernetes.io/component"), "worker");
    EXPECT_EQ(inventory[0].find_port("http")->port, 8091);
    EXPECT_EQ(inventory[2].name, "kafka-1");
    EXPECT_EQ(inventory[2].labels.at("statefulset.kubernetes.io/pod-name"), "kafka-1");

    const auto platform = parse_platform("platform.yaml", R"(endpoints:
  - name: kube-dns
    namespace: kube-system
    labels: {k8s-app: kube-dns}
    ports: [{name: dns, port: 53, protocol: UDP}]
)");
    ASSERT_TRUE(platform.has_value()) << platform.error().message;
    EXPECT_TRUE(platform.value()[0].external);
    EXPECT_EQ(platform.value()[0].ports[0].protocol, Protocol::udp);
    EXPECT_FALSE(parse_platform("platform.yaml", "endpoints: [{namespace: x}]").has_value());
}

TEST(Lint, NamesSelectorsThatSelectNothingAndWhy) {
    auto cluster = kube::parse_cluster("c3.yaml", kManifests);
    ASSERT_TRUE(cluster.has_value());
    const kube::Mesh mesh{{std::move(cluster).value()}};
    const Inventory inventory = endpoints_of(mesh);
    // The component label is on the Deployment only.
    const auto set = parse_policies("c3.yaml", "c3", R"(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: worker, namespace: calcmesh}
spec:
  endpointSelector: {matchLabels: {app.kubernetes.io/component: worker}}
  ingress: [{}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: broker, namespace: calcmesh}
spec:
  endpointSelector: {matchLabels: {app: kafka}}
  ingress:
    - fromEndpoints: [{matchLabels: {app.kubernetes.io/name: addition-worker}}]
      toPorts: [{ports: [{port: "9093", protocol: TCP}]}]
  egress:
    - toEndpoints: [{matchLabels: {app.kubernetes.io/name: job-submitter}}]
)");
    ASSERT_TRUE(set.findings.empty()) << set.findings.front().to_string();
    const auto findings = lint(set.set, inventory);
    ASSERT_EQ(findings.size(), 3u);
    EXPECT_EQ(findings[0].to_string(),
              "c3.yaml: CiliumNetworkPolicy calcmesh/worker: spec.endpointSelector: selects no pod "
              "in c3 (app.kubernetes.io/component=worker, io.kubernetes.pod.namespace=calcmesh); "
              "c3.yaml: Deployment calcmesh/addition-worker carries these labels on the object's "
              "own metadata.labels only, but policies select pods by the pod template's labels "
              "(spec.template.metadata.labels)");
    EXPECT_EQ(findings[1].to_string(),
              "c3.yaml: CiliumNetworkPolicy calcmesh/broker: spec.egress[0].toEndpoints[0]: "
              "matches no pod of any cluster (app.kubernetes.io/name=job-submitter, "
              "io.cilium.k8s.policy.cluster=c3, io.kubernetes.pod.namespace=calcmesh)");
    EXPECT_EQ(findings[2].to_string(),
              "c3.yaml: CiliumNetworkPolicy calcmesh/broker: spec.ingress[0].toPorts[0].ports[0]."
              "port: no pod this policy selects listens on 9093/TCP (their ports: "
              "kafka=9092/TCP)");
}

TEST(Lint, ExplainsAMissingClusterLabel) {
    Inventory inventory = {
        {.name = "server",
         .cluster = "c3",
         .namespace_ = "calcmesh",
         .labels = {{"app", "server"}},
         .ports = {{"http", 80, Protocol::tcp}}},
        {.name = "client",
         .cluster = "c1",
         .namespace_ = "calcmesh",
         .labels = {{"app", "client"}}},
    };
    const auto set = parse_policies("c3.yaml", "c3", R"(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: server, namespace: calcmesh}
spec:
  endpointSelector: {matchLabels: {app: server}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: client}}]
)");
    const auto findings = lint(set.set, inventory);
    ASSERT_EQ(findings.size(), 1u);
    EXPECT_EQ(findings[0].message,
              "matches no pod of any cluster (app=client, io.cilium.k8s.policy.cluster=c3, "
              "io.kubernetes.pod.namespace=calcmesh); it would match c1/client, but a selector "
              "without io.cilium.k8s.policy.cluster means the policy's own cluster c3 (Cilium "
              "1.19 policyDefaultLocalCluster): name the cluster");
}

}  // namespace
}  // namespace calcmesh::policy
