#include "calcmesh/kube/calls.hpp"

#include <gtest/gtest.h>

namespace calcmesh::kube {
namespace {

TEST(Calls, ParsesUrlsBootstrapListsAndListeners) {
    auto url = parse_addresses("http://addition-worker:8091/compute");
    ASSERT_TRUE(url.has_value());
    EXPECT_EQ(url.value().at(0).to_string(), "addition-worker:8091");
    EXPECT_EQ(parse_addresses("http://help-page").value().at(0).port, 80);
    auto list = parse_addresses("kafka-0.calcmesh.svc:9092, kafka-1.calcmesh.svc:9092");
    ASSERT_TRUE(list.has_value());
    ASSERT_EQ(list.value().size(), 2U);
    EXPECT_EQ(list.value()[1].host, "kafka-1.calcmesh.svc");
    auto listeners = parse_addresses("PLAINTEXT://kafka-0.calcmesh.svc.cluster.local:9092");
    EXPECT_EQ(listeners.value().at(0).host, "kafka-0.calcmesh.svc.cluster.local");
}

TEST(Calls, RejectsWhatIsNotAnAddress) {
    EXPECT_FALSE(parse_addresses("kafka:port").has_value());
    EXPECT_FALSE(parse_addresses("kafka").has_value());
    EXPECT_FALSE(parse_addresses("kafka:99999").has_value());
    EXPECT_EQ(parse_addresses("a:1,").error().message, "'' is not host:port or a URL");
}

TEST(Calls, ResolvesClusterDnsNamesToServices) {
    auto check = [](std::string_view host, const char* expected_namespace, const char* name) {
        const auto service = service_of_host(host, "calcmesh");
        ASSERT_TRUE(service.has_value()) << host;
        EXPECT_EQ(service->namespace_, expected_namespace) << host;
        EXPECT_EQ(service->name, name) << host;
    };
    check("log-collector", "calcmesh", "log-collector");
    check("kafka-0.other", "other", "kafka-0");
    check("kafka-0.calcmesh.svc", "calcmesh", "kafka-0");
    check("kafka-0.calcmesh.svc.cluster.local", "calcmesh", "kafka-0");
    check("kafka-0.calcmesh.svc.cluster.local.", "calcmesh", "kafka-0");
    // A pod name under a headless Service resolves through that Service.
    check("kafka-0.kafka.calcmesh.svc.cluster.local", "calcmesh", "kafka");
    EXPECT_FALSE(service_of_host("10.96.0.10", "calcmesh").has_value());
    EXPECT_FALSE(service_of_host("b-1.kafka.eu-west-1.amazonaws.com", "calcmesh").has_value());
}

TEST(Calls, FindsTheCallsOfEveryContainerWithTheirSource) {
    auto cluster = parse_cluster("c1.yaml", R"(apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: calcmesh}
data:
  CALCMESH_ADDITION_WORKER_URL: http://addition-worker:8091
  CALCMESH_LISTEN_ADDRESS: 0.0.0.0
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: job-submitter, namespace: calcmesh}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers:
        - name: main
          image: x
          envFrom: [{configMapRef: {name: cfg}}]
          env: [{name: CALCMESH_KAFKA_BOOTSTRAP_SERVERS, value: "kafka-0.calcmesh.svc:9092"}]
)");
    ASSERT_TRUE(cluster.has_value()) << cluster.error().message;
    auto calls = find_calls(cluster.value(), is_call_variable);
    ASSERT_TRUE(calls.has_value()) << calls.error().message;
    ASSERT_EQ(calls.value().size(), 2U);
    EXPECT_EQ(calls.value()[0].variable, "CALCMESH_ADDITION_WORKER_URL");
    EXPECT_EQ(calls.value()[0].source,
              "c1.yaml: ConfigMap calcmesh/cfg: data.CALCMESH_ADDITION_WORKER_URL");
    EXPECT_EQ(calls.value()[0].service->name, "addition-worker");
    EXPECT_EQ(calls.value()[1].service->name, "kafka-0");
    EXPECT_EQ(calls.value()[1].from->id.name, "job-submitter");
}

}  // namespace
}  // namespace calcmesh::kube
