#include "calcmesh/policy/engine.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "calcmesh/policy/lint.hpp"

namespace calcmesh::policy {
namespace {

/// Two clusters: a client and a server in "a", a remote client in "b", a pod of another
/// namespace in "a".
Inventory pods() {
    return {
        {.name = "client", .cluster = "a", .namespace_ = "calcmesh", .labels = {{"app", "client"}}},
        {.name = "server",
         .cluster = "a",
         .namespace_ = "calcmesh",
         .labels = {{"app", "server"}},
         .ports = {{"http", 8080, Protocol::tcp}}},
        {.name = "client", .cluster = "b", .namespace_ = "calcmesh", .labels = {{"app", "client"}}},
        {.name = "stranger", .cluster = "a", .namespace_ = "other", .labels = {{"app", "client"}}},
    };
}
constexpr std::size_t kClient = 0;
constexpr std::size_t kServer = 1;
constexpr std::size_t kRemoteClient = 2;
constexpr std::size_t kStranger = 3;

/// The policies of one file applied to cluster "a"; fails the test on any finding.
PolicySet policies(const std::string& yaml, const std::string& cluster = "a") {
    auto loaded = parse_policies(cluster + ".yaml", cluster, yaml);
    for (const auto& finding : loaded.findings) {
        ADD_FAILURE() << finding.to_string();
    }
    return loaded.set;
}

std::string cnp(const std::string& name, const std::string& spec) {
    return "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: " + name +
           ", namespace: calcmesh}\nspec:\n" + spec + "\n---\n";
}

Verdict verdict(const PolicySet& set, std::size_t from, std::size_t to, int port = 8080,
                const Request& request = {}, const Options& options = {}) {
    const Inventory inventory = pods();
    return decide(compile(set, inventory, options), Peer::of(from), Peer::of(to), port,
                  Protocol::tcp, request)
        .verdict;
}

const std::string kServerFromClient = R"(  endpointSelector: {matchLabels: {app: server}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: client}}]
      toPorts: [{ports: [{port: "8080", protocol: TCP}]}])";

TEST(Engine, NothingSelectedAllowsEverything) {
    EXPECT_EQ(verdict({}, kStranger, kServer), Verdict::allowed);
}

TEST(Engine, DefaultDenyOnlyInTheDirectionsWithRules) {
    const auto set = policies(cnp("server", kServerFromClient));
    const Inventory inventory = pods();
    const auto compiled = compile(set, inventory);
    EXPECT_TRUE(compiled.endpoints[kServer].ingress.default_deny);
    EXPECT_FALSE(compiled.endpoints[kServer].egress.default_deny);
    EXPECT_FALSE(compiled.endpoints[kClient].ingress.default_deny);
    EXPECT_EQ(verdict(set, kClient, kServer), Verdict::allowed);
    EXPECT_EQ(verdict(set, kClient, kServer, 9090), Verdict::dropped);
    // The server's egress has no rules: it may call anyone.
    EXPECT_EQ(verdict(set, kServer, kClient, 1234), Verdict::allowed);
}

TEST(Engine, AllowsOfSeveralPoliciesAddUp) {
    const auto set = policies(cnp("one", kServerFromClient) +
                              cnp("two", R"(  endpointSelector: {matchLabels: {app: server}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: client}}]
      toPorts: [{ports: [{port: "9090", protocol: TCP}]}])"));
    EXPECT_EQ(verdict(set, kClient, kServer, 8080), Verdict::allowed);
    EXPECT_EQ(verdict(set, kClient, kServer, 9090), Verdict::allowed);
    EXPECT_EQ(verdict(set, kClient, kServer, 7070), Verdict::dropped);
}

TEST(Engine, DenyRulesWinOverAllows) {
    const auto set = policies(cnp("allow", kServerFromClient) +
                              cnp("deny", R"(  endpointSelector: {matchLabels: {app: server}}
  ingressDeny:
    - fromEndpoints: [{matchLabels: {app: client}}])"));
    const Inventory inventory = pods();
    const auto decision =
        decide(compile(set, inventory), Peer::of(kClient), Peer::of(kServer), 8080, Protocol::tcp);
    EXPECT_EQ(decision.verdict, Verdict::dropped);
    EXPECT_EQ(decision.sides.back().rules.front().policy, "CiliumNetworkPolicy calcmesh/deny");
    EXPECT_EQ(decision.sides.back().rules.front().field, "spec.ingressDeny[0]");
}

TEST(Engine, SelectorsWithoutClusterLabelMeanTheLocalCluster) {
    const auto local = policies(cnp("server", kServerFromClient));
    EXPECT_EQ(verdict(local, kClient, kServer), Verdict::allowed);
    EXPECT_EQ(verdict(local, kRemoteClient, kServer), Verdict::dropped);
    // Cilium <= 1.18 (policyDefaultLocalCluster false): every cluster.
    EXPECT_EQ(verdict(local, kRemoteClient, kServer, 8080, {}, Options{false}), Verdict::allowed);

    const auto named = policies(cnp("server", R"(  endpointSelector: {matchLabels: {app: server}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: client, io.cilium.k8s.policy.cluster: b}}])"));
    EXPECT_EQ(verdict(named, kRemoteClient, kServer), Verdict::allowed);
    EXPECT_EQ(verdict(named, kClient, kServer), Verdict::dropped);

    const auto any = policies(cnp("server", R"(  endpointSelector: {matchLabels: {app: server}}
  ingress:
    - fromEndpoints:
        - matchLabels: {app: client}
          matchExpressions: [{key: io.cilium.k8s.policy.cluster, operator: Exists}])"));
    EXPECT_EQ(verdict(any, kRemoteClient, kServer), Verdict::allowed);
    EXPECT_EQ(verdict(any, kClient, kServer), Verdict::allowed);
}

TEST(Engine, NamespacedPoliciesSelectPeersOfTheirNamespace) {
    const auto set = policies(cnp("server", kServerFromClient));
    EXPECT_EQ(verdict(set, kStranger, kServer), Verdict::dropped);
    const auto other = policies(cnp("server", R"(  endpointSelector: {matchLabels: {app: server}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: client, k8s:io.kubernetes.pod.namespace: other}}])"));
    EXPECT_EQ(verdict(other, kStranger, kServer), Verdict::allowed);
    EXPECT_EQ(verdict(other, kClient, kServer), Verdict::dropped);
}

const std::string kComputeOnly = R"(  endpointSelector: {matchLabels: {app: server}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: client}}]
      toPorts:
        - ports: [{port: http, protocol: TCP}]
          rules:
            http:
              - {method: GET, path: /compute}
              - {method: GET, path: "/about([?].*)?"})";

TEST(Engine, HttpRulesMatchTheWholeMethodAndPathQueryIncluded) {
    const auto set = policies(cnp("server", kComputeOnly));
    EXPECT_EQ(verdict(set, kClient, kServer, 8080, Request::http("GET", "/compute")),
              Verdict::allowed);
    EXPECT_EQ(verdict(set, kClient, kServer, 8080, Request::http("GET", "/compute?a=1&b=2")),
              Verdict::rejected);
    EXPECT_EQ(verdict(set, kClient, kServer, 8080, Request::http("GET", "/computer")),
              Verdict::rejected);
    EXPECT_EQ(verdict(set, kClient, kServer, 8080, Request::http("GET", "/x/compute")),
              Verdict::rejected);
    EXPECT_EQ(verdict(set, kClient, kServer, 8080, Request::http("GETS", "/compute")),
              Verdict::rejected);
    EXPECT_EQ(verdict(set, kClient, kServer, 8080, Request::http("POST", "/compute")),
              Verdict::rejected);
    EXPECT_EQ(verdict(set, kClient, kServer, 8080, Request::http("GET", "/about?lang=en")),
              Verdict::allowed);
    // Without a request, the connection passes and the rules decide each request.
    EXPECT_EQ(verdict(set, kClient, kServer), Verdict::restricted);
}

TEST(Engine, L7DenialSays403AndNamesTheRules) {
    const auto set = policies(cnp("server", kComputeOnly));
    const Inventory inventory = pods();
    const auto decision = decide(compile(set, inventory), Peer::of(kClient), Peer::of(kServer),
                                 8080, Protocol::tcp, Request::http("GET", "/metrics"));
    ASSERT_EQ(decision.verdict, Verdict::rejected);
    const SideDecision& side = decision.sides.back();
    EXPECT_NE(side.reason.find("HTTP 403 Access denied"), std::string::npos) << side.reason;
    EXPECT_EQ(side.l7_allowed,
              (std::vector<std::string>{"http GET /compute", "http GET /about([?].*)?"}));
    const auto allowed = decide(compile(set, inventory), Peer::of(kClient), Peer::of(kServer), 8080,
                                Protocol::tcp, Request::http("GET", "/about"));
    EXPECT_EQ(allowed.sides.back().rules.front().field, "spec.ingress[0].toPorts[0].rules.http[1]");
}

TEST(Engine, AnL4AllowOfTheSamePeerAndPortOverridesL7Rules) {
    const auto set = policies(cnp("l7", kComputeOnly) + cnp("l4", kServerFromClient));
    EXPECT_EQ(verdict(set, kClient, kServer, 8080, Request::http("DELETE", "/everything")),
              Verdict::allowed);
    const auto findings = lint(set, pods());
    ASSERT_EQ(findings.size(), 1u);
    EXPECT_EQ(findings[0].where,
              "a.yaml: CiliumNetworkPolicy calcmesh/l7: spec.ingress[0].toPorts[0]");
    EXPECT_NE(findings[0].message.find("its L7 rules have no effect"), std::string::npos);

    const auto kinds = policies(cnp("l7", kComputeOnly) +
                                cnp("kafka", R"(  endpointSelector: {matchLabels: {app: server}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: client}}]
      toPorts:
        - ports: [{port: "8080", protocol: TCP}]
          rules: {kafka: [{role: produce}]})"));
    const auto clash = lint(kinds, pods());
    ASSERT_EQ(clash.size(), 2u);  // one from each side
    EXPECT_EQ(
        clash[0].to_string(),
        "a.yaml: CiliumNetworkPolicy calcmesh/l7: spec.ingress[0].toPorts[0]: L7 rules of two "
        "kinds for a/client on 8080/TCP: Cilium rejects http and kafka rules (a.yaml: "
        "CiliumNetworkPolicy calcmesh/kafka: spec.ingress[0].toPorts[0]) on one port");
}

TEST(Engine, EntitiesMatchTheirPeers) {
    const auto set = policies(cnp("server", R"(  endpointSelector: {matchLabels: {app: server}}
  ingress:
    - fromEntities: [host]
  egress:
    - toEntities: [cluster])"));
    const Inventory inventory = pods();
    const auto compiled = compile(set, inventory);
    const auto from = [&](Entity entity) {
        return decide(compiled, Peer::of(entity), Peer::of(kServer), 8080, Protocol::tcp).verdict;
    };
    EXPECT_EQ(from(Entity::host), Verdict::allowed);
    EXPECT_EQ(from(Entity::world), Verdict::dropped);
    EXPECT_EQ(from(Entity::remote_node), Verdict::dropped);
    const auto to = [&](const Peer& peer) {
        return decide(compiled, Peer::of(kServer), peer, 53, Protocol::udp).verdict;
    };
    EXPECT_EQ(to(Peer::of(kStranger)), Verdict::allowed);  // same cluster, any namespace
    EXPECT_EQ(to(Peer::of(Entity::remote_node)), Verdict::allowed);
    EXPECT_EQ(to(Peer::of(kRemoteClient)), Verdict::dropped);  // another cluster
    EXPECT_EQ(to(Peer::of(Entity::world)), Verdict::dropped);

    const auto all = policies(cnp("server", R"(  endpointSelector: {matchLabels: {app: server}}
  egress:
    - toEntities: [all])"));
    EXPECT_EQ(decide(compile(all, inventory), Peer::of(kServer), Peer::of(Entity::world), 443,
                     Protocol::tcp)
                  .verdict,
              Verdict::allowed);
}

TEST(Engine, PortsWithoutPeersAllowEveryPeerAndAnEmptyRuleAllowsNothing) {
    const auto ports_only =
        policies(cnp("server", R"(  endpointSelector: {matchLabels: {app: server}}
  ingress:
    - toPorts: [{ports: [{port: "8080", protocol: TCP}]}])"));
    EXPECT_EQ(verdict(ports_only, kRemoteClient, kServer), Verdict::allowed);
    EXPECT_EQ(verdict(ports_only, kStranger, kServer, 9090), Verdict::dropped);

    const auto empty = policies(cnp("server", R"(  endpointSelector: {matchLabels: {app: server}}
  ingress:
    - {})"));
    EXPECT_EQ(verdict(empty, kClient, kServer), Verdict::dropped);
    EXPECT_EQ(verdict(empty, kServer, kClient), Verdict::allowed);
}

TEST(Engine, EnableDefaultDenyFalseKeepsOtherPeersAllowed) {
    const auto set = policies(cnp("server", kServerFromClient + R"(
  enableDefaultDeny: {ingress: false})"));
    EXPECT_EQ(verdict(set, kStranger, kServer), Verdict::allowed);
}

TEST(Engine, NamedPortsResolveOnTheSelectedPod) {
    const auto set = policies(cnp("server", R"(  endpointSelector: {matchLabels: {app: server}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: client}}]
      toPorts: [{ports: [{port: http, protocol: TCP}]}])"));
    EXPECT_EQ(verdict(set, kClient, kServer, 8080), Verdict::allowed);
    EXPECT_EQ(verdict(set, kClient, kServer, 8081), Verdict::dropped);
}

TEST(Engine, KafkaRulesFollowRolesAndTopics) {
    const auto set = policies(cnp("broker", R"(  endpointSelector: {matchLabels: {app: server}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: client}}]
      toPorts:
        - ports: [{port: "8080", protocol: TCP}]
          rules:
            kafka:
              - {role: produce, topic: results}
              - {apiKey: initproducerid})"));
    const auto kafka = [&](const std::string& key, const std::string& topic) {
        return verdict(set, kClient, kServer, 8080, Request::kafka(key, topic));
    };
    EXPECT_EQ(kafka("produce", "results"), Verdict::allowed);
    EXPECT_EQ(kafka("metadata", "results"), Verdict::allowed);
    EXPECT_EQ(kafka("apiversions", ""), Verdict::allowed);  // no topic: the role's key suffices
    EXPECT_EQ(kafka("initproducerid", ""), Verdict::allowed);
    EXPECT_EQ(kafka("produce", "addition_requests"), Verdict::rejected);
    EXPECT_EQ(kafka("fetch", "results"), Verdict::rejected);
    const Inventory inventory = pods();
    const auto decision = decide(compile(set, inventory), Peer::of(kClient), Peer::of(kServer),
                                 8080, Protocol::tcp, Request::kafka("produce", "other"));
    EXPECT_NE(decision.sides.back().reason.find("TOPIC_AUTHORIZATION_FAILED"), std::string::npos);
    EXPECT_EQ(kafka_operation("consume", "t").size(), 5u);
    EXPECT_TRUE(kafka_operation("nonsense", "t").empty());
}

TEST(Engine, AKafkaTopicMatchesOnlyRequestsWhoseTopicsTheProxyReads) {
    // Cilium's proxy counts offsetforleaderepoch and createtopics among the API keys that name
    // topics, so a rule's topic applies to them, but it reads no topics from their requests.
    const auto rule = [](const std::string& kafka_rule) {
        return policies(cnp("broker", R"(  endpointSelector: {matchLabels: {app: server}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: client}}]
      toPorts:
        - ports: [{port: "8080", protocol: TCP}]
          rules:
            kafka: [)" + kafka_rule + "]"));
    };
    const auto epoch = Request::kafka("offsetforleaderepoch", "results");
    EXPECT_EQ(verdict(rule("{apiKey: offsetforleaderepoch, topic: results}"), kClient, kServer,
                      8080, epoch),
              Verdict::rejected)
        << "the rule's topic is never among the topics read";
    EXPECT_EQ(verdict(rule("{apiKey: offsetforleaderepoch}"), kClient, kServer, 8080, epoch),
              Verdict::allowed);
    EXPECT_EQ(verdict(rule("{apiKey: createtopics, topic: results}"), kClient, kServer, 8080,
                      Request::kafka("createtopics", "results")),
              Verdict::rejected);
    // The topics of produce are read; findcoordinator names no topic, so the topic is ignored.
    EXPECT_EQ(verdict(rule("{apiKey: produce, topic: results}"), kClient, kServer, 8080,
                      Request::kafka("produce", "results")),
              Verdict::allowed);
    EXPECT_EQ(verdict(rule("{apiKey: findcoordinator, topic: results}"), kClient, kServer, 8080,
                      Request::kafka("findcoordinator", "")),
              Verdict::allowed);

    // A refused request the proxy does not decode gets no answer at all.
    const Inventory inventory = pods();
    const auto refused =
        decide(compile(rule("{apiKey: offsetforleaderepoch, topic: results}"), inventory),
               Peer::of(kClient), Peer::of(kServer), 8080, Protocol::tcp, epoch);
    EXPECT_NE(refused.sides.back().reason.find("dropped without an answer"), std::string::npos)
        << refused.sides.back().reason;
    const auto requests = kafka_operation("offsetforleaderepoch", "results");
    ASSERT_EQ(requests.size(), 1u);
    EXPECT_EQ(requests[0].topic, "results") << "the client names the topic all the same";
}

TEST(Engine, EgressAndIngressMustBothAllow) {
    const auto set = policies(cnp("server", kServerFromClient) +
                              cnp("client", R"(  endpointSelector: {matchLabels: {app: client}}
  egress:
    - toEndpoints: [{matchLabels: {app: server}}]
      toPorts: [{ports: [{port: "9090", protocol: TCP}]}])"));
    const Inventory inventory = pods();
    const auto decision =
        decide(compile(set, inventory), Peer::of(kClient), Peer::of(kServer), 8080, Protocol::tcp);
    ASSERT_EQ(decision.sides.size(), 2u);
    EXPECT_EQ(decision.sides[0].direction, Direction::egress);
    EXPECT_EQ(decision.sides[0].verdict, Verdict::dropped);
    EXPECT_EQ(decision.sides[1].verdict, Verdict::allowed);
    EXPECT_EQ(decision.verdict, Verdict::dropped);
}

TEST(Engine, MapEntriesMergeOnePeerAndPort) {
    const auto set = policies(cnp("l7", kComputeOnly) + cnp("l4", kServerFromClient));
    const Inventory inventory = pods();
    const auto entries = map_entries(compile(set, inventory).endpoints[kServer].ingress);
    ASSERT_EQ(entries.size(), 1u);
    EXPECT_EQ(entries[0].peer, Peer::of(kClient));
    EXPECT_EQ(entries[0].port, 8080);
    EXPECT_FALSE(entries[0].l7);  // the L4 allow wins
    EXPECT_EQ(entries[0].rules.size(), 2u);
}

/// The broker and its clients as the deployment kit runs them, with the labels its policies
/// select.
Inventory kafka_clients() {
    Inventory endpoints = {{.name = "kafka-0",
                            .cluster = "c2-kafka",
                            .namespace_ = "calcmesh",
                            .labels = {{"app.kubernetes.io/name", "kafka"},
                                       {"statefulset.kubernetes.io/pod-name", "kafka-0"}},
                            .ports = {{"kafka", 9092, Protocol::tcp}}},
                           {.name = "job-submitter",
                            .cluster = "c1-client",
                            .namespace_ = "calcmesh",
                            .labels = {{"app.kubernetes.io/name", "job-submitter"}}}};
    for (const auto& [operation, cluster] :
         {std::pair{"addition", "c3a-workers"}, std::pair{"subtraction", "c3a-workers"},
          std::pair{"multiplication", "c3b-workers"}, std::pair{"division", "c3b-workers"}}) {
        endpoints.push_back(
            {.name = std::string(operation) + "-worker",
             .cluster = cluster,
             .namespace_ = "calcmesh",
             .labels = {{"app.kubernetes.io/name", std::string(operation) + "-worker"},
                        {"app.kubernetes.io/component", "worker"}}});
    }
    return endpoints;
}

/// The requests a librdkafka 2.x client sends for the services' use of Kafka
/// (common/src/kafka.cpp): an idempotent producer of `produced`, and a consumer of `consumed` that
/// follows the tail (job_submitter) or takes part in a consumer group (the workers).
std::vector<Request> client_requests(const std::vector<std::string>& produced,
                                     const std::string& consumed, bool group) {
    std::vector<Request> requests = {Request::kafka("apiversions", ""),
                                     Request::kafka("metadata", ""),
                                     Request::kafka("initproducerid", "")};
    const auto add = [&](std::vector<Request> more) {
        requests.insert(requests.end(), more.begin(), more.end());
    };
    for (const auto& topic : produced) {
        add(kafka_operation("produce", topic));
    }
    add(kafka_operation("consume", consumed));
    add(kafka_operation("offsetforleaderepoch", consumed));  // offset validation
    if (group) {
        for (const auto* key :
             {"findcoordinator", "joingroup", "syncgroup", "heartbeat", "leavegroup"}) {
            requests.push_back(Request::kafka(key, ""));
        }
    }
    return requests;
}

TEST(KafkaL7Policy, TheKitsFileAllowsEveryRequestTheClientsMake) {
    const auto loaded = load_policies({std::filesystem::path(CALCMESH_SOURCE_DIR) /
                                       "deploy/kubernetes/policies/kafka-l7/c2-kafka.yaml"},
                                      {"c1-client", "c2-kafka", "c3a-workers", "c3b-workers"});
    for (const auto& finding : loaded.findings) {
        ADD_FAILURE() << finding.to_string();
    }
    const Inventory inventory = kafka_clients();
    const auto compiled = compile(loaded.set, inventory);
    struct Client {
        std::size_t endpoint;
        std::vector<Request> requests;
        std::vector<Request> refused;  ///< not an allow-all: others' topics stay closed
    };
    std::vector<Client> clients = {
        {1,
         client_requests({"addition_requests", "subtraction_requests", "multiplication_requests",
                          "division_requests"},
                         "results", false),
         {Request::kafka("fetch", "addition_requests"), Request::kafka("produce", "results")}}};
    for (std::size_t worker = 2; worker < inventory.size(); ++worker) {
        const auto& name = inventory[worker].name;  // "addition-worker"
        const std::string other = worker == 2 ? "subtraction_requests" : "addition_requests";
        clients.push_back(
            {worker,
             client_requests({"results"}, name.substr(0, name.find('-')) + "_requests", true),
             {Request::kafka("fetch", other), Request::kafka("produce", other),
              Request::kafka("fetch", "results")}});
    }
    for (const auto& client : clients) {
        for (const auto& [requests, expected] : {std::pair{&client.requests, Verdict::allowed},
                                                 std::pair{&client.refused, Verdict::rejected}}) {
            for (const auto& request : *requests) {
                const auto decision = decide(compiled, Peer::of(client.endpoint), Peer::of(0), 9092,
                                             Protocol::tcp, request);
                EXPECT_EQ(to_string(decision.verdict), to_string(expected))
                    << inventory[client.endpoint].to_string() << " " << request.to_string() << ": "
                    << decision.sides.back().reason;
            }
        }
    }
}

}  // namespace
}  // namespace calcmesh::policy
