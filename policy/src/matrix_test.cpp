#include "calcmesh/policy/matrix.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace calcmesh::policy {
namespace {

Inventory pods() {
    return {
        {.name = "client", .cluster = "a", .namespace_ = "calcmesh", .labels = {{"app", "client"}}},
        {.name = "server",
         .cluster = "b",
         .namespace_ = "calcmesh",
         .labels = {{"app", "server"}},
         .ports = {{"http", 8080, Protocol::tcp}}},
        {.name = "kube-dns",
         .cluster = "a",
         .namespace_ = "kube-system",
         .labels = {{"k8s-app", "kube-dns"}},
         .ports = {{"dns", 53, Protocol::udp}},
         .external = true},
    };
}

const std::string kPolicies = R"(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: server, namespace: calcmesh}
spec:
  endpointSelector: {matchLabels: {app: server}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: client, io.cilium.k8s.policy.cluster: a}}]
      toPorts:
        - ports: [{port: http, protocol: TCP}]
          rules:
            http: [{method: GET, path: "/compute([?].*)?"}]
)";

struct Fixture {
    Inventory inventory = pods();
    CompiledPolicy compiled;
    std::vector<MatrixRow> rows;

    explicit Fixture(const std::string& yaml) {
        const auto loaded = parse_policies("b.yaml", "b", yaml);
        EXPECT_TRUE(loaded.findings.empty());
        compiled = compile(loaded.set, inventory);
        rows = build_matrix(compiled, inventory);
    }
};

std::vector<IntendedFlow> intended(const std::string& yaml) {
    auto flows = parse_intended("intended.yaml", yaml);
    EXPECT_TRUE(flows.has_value()) << flows.error().message;
    return flows.has_value() ? flows.value() : std::vector<IntendedFlow>{};
}

TEST(Matrix, HasEveryPairButTwoOutsiders) {
    Fixture fixture(kPolicies);
    // sources: 3 endpoints + world + host; destinations: server:8080, kube-dns:53, world:443.
    // Left out: kube-dns -> kube-dns, kube-dns -> world, world/host -> kube-dns, world/host ->
    // world.
    EXPECT_EQ(fixture.rows.size(), 5u * 3u - 6u);
    const auto text = matrix_text(fixture.rows, fixture.inventory, false);
    EXPECT_NE(text.find("a/client"), std::string::npos);
    EXPECT_NE(text.find("L7 http: GET /compute([?].*)?"), std::string::npos) << text;
    EXPECT_NE(text.find("9 pairs: 5 connect (1 of them through L7 rules), 4 dropped"),
              std::string::npos)
        << text;
    const auto json = matrix_json(fixture.rows, fixture.inventory);
    EXPECT_EQ(json.size(), 9u);
    EXPECT_EQ(json[0]["to"], "b/server");
    EXPECT_EQ(json[0]["verdict"], "restricted");
    EXPECT_EQ(json[0]["sides"][1]["rules"][0]["policy"], "CiliumNetworkPolicy calcmesh/server");
}

TEST(Matrix, ProbesOnlyThePairsTheirKindOfRulesRestrict) {
    Fixture fixture(kPolicies);
    const std::vector<Request> probes = {Request::http("GET", "/compute?a=1"),
                                         Request::kafka("produce", "results")};
    ASSERT_EQ(fixture.rows[0].decision.verdict, Verdict::restricted);
    const auto applying = probes_for(fixture.rows[0], probes);
    ASSERT_EQ(applying.size(), 1u);  // HTTP rules: the Kafka request is not theirs to decide
    EXPECT_EQ(applying[0].to_string(), "GET /compute?a=1");
    for (std::size_t i = 1; i < fixture.rows.size(); ++i) {
        EXPECT_TRUE(probes_for(fixture.rows[i], probes).empty()) << i;  // none restricted
    }
    fixture.rows[0].probes.push_back(
        {applying[0], decide(fixture.compiled, fixture.rows[0].from, fixture.rows[0].to, 8080,
                             Protocol::tcp, applying[0])});
    const auto json = matrix_json(fixture.rows, fixture.inventory);
    EXPECT_EQ(json[0]["requests"][0]["request"], "GET /compute?a=1");
    EXPECT_EQ(json[0]["requests"][0]["verdict"], "allowed");
    EXPECT_TRUE(json[1]["requests"].empty());
}

TEST(Matrix, AgreesWithItsIntendedFlows) {
    // Outside the server's policy everything is open (no other policy): list what connects.
    Fixture fixture(kPolicies);
    const auto flows = intended(R"(flows:
  - from: client
    to: server
    port: http
    allow: ["GET /compute?a=1&b=2"]
    deny: ["GET /about", "POST /compute"]
  - {from: [client, server], to: kube-dns, port: 53, protocol: UDP}
  - {from: ["*"], to: world, port: 443}
  - {from: [server, host, world], to: client, port: 0}
)");
    const auto differences = compare(fixture.rows, flows, fixture.compiled, fixture.inventory);
    // server -> server:8080 is dropped and not listed; nothing listens on client: the last flow
    // names no pair.
    ASSERT_EQ(differences.size(), 1u) << differences.front();
    EXPECT_EQ(differences[0],
              "flows[3] (server, host, world -> client 0): matches no pair of the matrix");
}

TEST(Matrix, ReportsEachKindOfDifference) {
    Fixture fixture(kPolicies);
    const auto flows = intended(R"(flows:
  - from: client
    to: server
    port: "8080"
    allow: ["GET /about"]
    deny: ["GET /compute"]
  - {from: host, to: server, port: http}
)");
    const auto differences = compare(fixture.rows, flows, fixture.compiled, fixture.inventory);
    const auto has = [&](const std::string& text) {
        return std::any_of(differences.begin(), differences.end(), [&](const std::string& line) {
            return line.find(text) != std::string::npos;
        });
    };
    EXPECT_TRUE(
        has("a/client -> b/server 8080/TCP GET /about: must pass (flows[0]) but rejected (L7)"));
    EXPECT_TRUE(
        has("a/client -> b/server 8080/TCP GET /compute: must be refused (flows[0]) but allowed"));
    EXPECT_TRUE(has("host -> b/server 8080/TCP: intended (flows[1]) but dropped"));
    EXPECT_TRUE(has("a/client -> a/kube-dns 53/UDP: connects"));
    EXPECT_TRUE(has("but the intended matrix does not list it"));
}

TEST(Matrix, OptionalL7LetsDenyProbesPassWithoutL7Rules) {
    const std::string l4 = R"(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: server, namespace: calcmesh}
spec:
  endpointSelector: {matchLabels: {app: server}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: client, io.cilium.k8s.policy.cluster: a}}]
      toPorts: [{ports: [{port: http, protocol: TCP}]}]
)";
    Fixture fixture(l4);
    const std::string flow = R"(flows:
  - from: client
    to: server
    port: http
    allow: [produce results]
    deny: [produce other]
)";
    const auto strict = compare(fixture.rows, intended(flow), fixture.compiled, fixture.inventory);
    EXPECT_TRUE(std::any_of(strict.begin(), strict.end(), [](const std::string& line) {
        return line.find("produce other: must be refused") != std::string::npos;
    }));
    const auto optional = compare(fixture.rows, intended(flow + "    l7: optional\n"),
                                  fixture.compiled, fixture.inventory);
    EXPECT_TRUE(std::none_of(optional.begin(), optional.end(), [](const std::string& line) {
        return line.find("produce other") != std::string::npos;
    }));
}

TEST(Matrix, ParsesProbesAndRejectsBadFiles) {
    EXPECT_EQ(parse_probe("GET /compute?a=1")[0].to_string(), "GET /compute?a=1");
    EXPECT_EQ(parse_probe("produce results").size(), 2u);
    EXPECT_EQ(parse_probe("apiversions")[0].to_string(), "kafka apiversions");
    EXPECT_TRUE(parse_probe("fly away").empty());
    EXPECT_FALSE(
        parse_intended("x.yaml", "flows: [{from: a, to: b, port: 1, allow: [\"fly away\"]}]")
            .has_value());
    const auto unknown = parse_intended("x.yaml", "flows: [{from: a, to: b, port: 1, alow: []}]");
    ASSERT_FALSE(unknown.has_value());
    EXPECT_EQ(unknown.error().message, "x.yaml: flows[0].alow: unknown field");
}

}  // namespace
}  // namespace calcmesh::policy
