// The flow model, Hubble's JSON shape, the filters, the compact lines and the service map, on
// flows built by hand (the lab test checks them on real traffic).
#include "flow.hpp"

#include <gtest/gtest.h>

#include "filter.hpp"
#include "printer.hpp"
#include "service_map.hpp"

namespace calcmesh::observe {
namespace {

constexpr std::uint8_t kSyn = 0x02, kAck = 0x10;

FlowEndpoint pod(const std::string& cluster, const std::string& name, std::uint32_t identity) {
    return {identity,
            cluster,
            "calcmesh",
            name,
            {"k8s:app.kubernetes.io/name=" + name, "k8s:io.cilium.k8s.policy.cluster=" + cluster}};
}

Flow connection(const FlowEndpoint& from, const FlowEndpoint& to, std::uint16_t port,
                TrafficDirection direction) {
    Flow flow;
    flow.time_ns = 1'700'000'000'123'456'789;
    flow.uuid = "5d1b2a52-1c2f-4d5e-8f00-0123456789ab";
    flow.source_ip = "198.18.17.10";
    flow.destination_ip = "198.18.49.10";
    flow.protocol = 6;
    flow.source_port = 43210;
    flow.destination_port = port;
    flow.tcp_flags = kSyn;
    flow.source = from;
    flow.destination = to;
    flow.node_name = "c3a-workers/c3an1";
    flow.direction = direction;
    flow.summary = "TCP Flags: SYN";
    return flow;
}

const auto kSubmitter = pod("c1-client", "job-submitter", 65792);
const auto kHelp = pod("c1-client", "help-page", 65793);
const auto kAddition = pod("c3a-workers", "addition-worker", 196864);

Flow http_request(const FlowEndpoint& from, const std::string& path, Verdict verdict) {
    auto flow = connection(from, kAddition, 8091, TrafficDirection::ingress);
    flow.tcp_flags = kAck | 0x08;
    flow.l7 = true;
    flow.event_type = kMessageTypeAccessLog;
    flow.verdict = verdict;
    flow.http = HttpInfo{0, "GET", "http://addition-worker:8091" + path, "HTTP/1.1"};
    flow.summary = "HTTP/1.1 GET http://addition-worker:8091" + path;
    return flow;
}

TEST(FlowJson, UsesHubblesFieldNames) {
    auto flow = http_request(kSubmitter, "/compute?a=1&b=2", Verdict::audit);
    flow.allowed_by.push_back({"workers", "calcmesh", "CiliumNetworkPolicy"});
    const auto json = to_json(flow);
    const auto& f = json.at("flow");
    EXPECT_EQ(json.at("node_name"), "c3a-workers/c3an1");
    EXPECT_EQ(f.at("time"), "2023-11-14T22:13:20.123456789Z");
    EXPECT_EQ(f.at("verdict"), "AUDIT");
    EXPECT_EQ(f.at("IP").at("source"), "198.18.17.10");
    EXPECT_EQ(f.at("IP").at("ipVersion"), "IPv4");
    EXPECT_EQ(f.at("l4").at("TCP").at("destination_port"), 8091);
    EXPECT_TRUE(f.at("l4").at("TCP").at("flags").at("PSH").get<bool>());
    EXPECT_EQ(f.at("source").at("cluster_name"), "c1-client");
    EXPECT_EQ(f.at("source").at("pod_name"), "job-submitter");
    EXPECT_EQ(f.at("destination").at("identity"), 196864);
    EXPECT_EQ(f.at("Type"), "L7");
    EXPECT_EQ(f.at("l7").at("type"), "REQUEST");
    EXPECT_EQ(f.at("l7").at("http").at("method"), "GET");
    EXPECT_EQ(f.at("traffic_direction"), "INGRESS");
    EXPECT_EQ(f.at("event_type").at("type"), 129);
    EXPECT_EQ(f.at("ingress_allowed_by").at(0).at("name"), "workers");
    EXPECT_EQ(f.at("Summary"), "HTTP/1.1 GET http://addition-worker:8091/compute?a=1&b=2");

    const auto back = flow_from_json(json);
    EXPECT_EQ(back.time_ns, flow.time_ns);
    EXPECT_EQ(back.verdict, Verdict::audit);
    EXPECT_EQ(back.tcp_flags, flow.tcp_flags);
    EXPECT_EQ(back.source.labels, flow.source.labels);
    EXPECT_EQ(back.http->url, flow.http->url);
    EXPECT_EQ(back.http_path(), "/compute");
    EXPECT_EQ(back.allowed_by.at(0).kind, "CiliumNetworkPolicy");
}

TEST(FlowJson, DropsCarryTheirReason) {
    auto flow = connection(kHelp, kAddition, 8091, TrafficDirection::ingress);
    flow.verdict = Verdict::dropped;
    flow.drop_reason = 133;
    flow.event_type = kMessageTypeDrop;
    flow.event_sub_type = 133;
    const auto json = to_json(flow);
    EXPECT_EQ(json["flow"]["drop_reason_desc"], "POLICY_DENIED");
    EXPECT_EQ(json["flow"]["event_type"]["sub_type"], 133);
    EXPECT_EQ(json["flow"]["Type"], "L3_L4");
    EXPECT_EQ(flow_from_json(json).drop_reason, 133);

    const LostEvents lost{flow.time_ns, "c1-client/c1n1", "PERF_EVENT_RING_BUFFER", 12};
    const auto lost_json = to_json(lost);
    EXPECT_EQ(lost_json["lost_events"]["num_events_lost"], "12");
    EXPECT_EQ(lost_from_json(lost_json).count, 12u);
}

TEST(Filter, MatchesLikeHubble) {
    const auto request = http_request(kSubmitter, "/compute?a=1", Verdict::forwarded);
    const auto drop = [&] {
        auto flow = connection(kHelp, kAddition, 8091, TrafficDirection::ingress);
        flow.verdict = Verdict::dropped;
        return flow;
    }();
    EXPECT_TRUE(FlowFilter{}.matches(request));
    EXPECT_TRUE(FlowFilter{.from_pod = {"job-"}}.matches(request));
    EXPECT_TRUE(FlowFilter{.from_pod = {"calcmesh/job-submitter"}}.matches(request));
    EXPECT_FALSE(FlowFilter{.from_pod = {"kube-system/job-submitter"}}.matches(request));
    EXPECT_TRUE((FlowFilter{.from_pod = {"help", "job"}}.matches(request)));
    EXPECT_TRUE(FlowFilter{.to_cluster = {"c3a-workers"}}.matches(request));
    EXPECT_FALSE(FlowFilter{.from_cluster = {"c3a-workers"}}.matches(request));
    EXPECT_TRUE(FlowFilter{.protocol = {"tcp"}}.matches(request));
    EXPECT_TRUE(FlowFilter{.protocol = {"http"}}.matches(request));
    EXPECT_FALSE(FlowFilter{.protocol = {"kafka"}}.matches(request));
    EXPECT_FALSE(FlowFilter{.protocol = {"http"}}.matches(drop));
    EXPECT_TRUE(FlowFilter{.verdict = {Verdict::dropped}}.matches(drop));
    EXPECT_FALSE(FlowFilter{.verdict = {Verdict::dropped}}.matches(request));
    EXPECT_TRUE(FlowFilter{.http_path = {"^/comp"}}.matches(request));
    EXPECT_FALSE(FlowFilter{.http_path = {"^/about"}}.matches(request));

    const FlowFilter filter{.from_pod = {"job"}, .verdict = {Verdict::audit}, .http_path = {"x"}};
    const auto back = filter_from_json(to_json(filter));
    EXPECT_EQ(back.from_pod, filter.from_pod);
    EXPECT_EQ(back.verdict, filter.verdict);
    EXPECT_THROW(FlowFilter{.protocol = {"sctp"}}.validate(), std::invalid_argument);
    EXPECT_THROW(FlowFilter{.http_path = {"("}}.validate(), std::invalid_argument);
}

TEST(Printer, CompactLinesNameClustersTypeAndVerdict) {
    const auto request = compact_line(http_request(kSubmitter, "/compute", Verdict::audit), true);
    EXPECT_NE(request.find("[c3a-workers/c3an1]: c1-client/calcmesh/job-submitter:43210 "
                           "(ID:65792) -> c3a-workers/calcmesh/addition-worker:8091 (ID:196864) "
                           "L7 http-request AUDIT (HTTP/1.1 GET "),
              std::string::npos)
        << request;

    auto reply = connection(kAddition, kSubmitter, 43210, TrafficDirection::ingress);
    reply.source_port = 8091;
    reply.is_reply = true;
    reply.tcp_flags = kSyn | kAck;
    reply.summary = "TCP Flags: SYN, ACK";
    const auto line = compact_line(reply, false);
    EXPECT_NE(line.find("c1-client/calcmesh/job-submitter:43210 (ID:65792) <- "
                        "c3a-workers/calcmesh/addition-worker:8091 (ID:196864) L3_L4 to-endpoint "
                        "FORWARDED (TCP Flags: SYN, ACK)"),
              std::string::npos)
        << line;

    auto world = connection({2, "", "", "", {"reserved:world"}}, kSubmitter, 8080,
                            TrafficDirection::ingress);
    world.source_ip = "198.19.0.100";
    world.verdict = Verdict::dropped;
    world.drop_reason = 133;
    EXPECT_NE(compact_line(world, false).find("198.19.0.100:43210 (world) -> "), std::string::npos);
    EXPECT_NE(compact_line(world, false).find("L3_L4 Policy denied DROPPED (TCP Flags: SYN)"),
              std::string::npos);
}

TEST(ServiceMap, CountsEachConnectionOnceAndDrawsDropsInRed) {
    ServiceMap map({{"c1-client/job-submitter", "job-submitter", "c1-client", "frontend"},
                    {"c1-client/help-page", "help-page", "c1-client", "frontend"},
                    {"c3a-workers/addition-worker", "addition-worker", "c3a-workers", "worker"}},
                   {{8091, "http"}});
    // The same connection seen leaving c1n1 and entering c3an1.
    map.add(connection(kSubmitter, kAddition, 8091, TrafficDirection::egress));
    map.add(connection(kSubmitter, kAddition, 8091, TrafficDirection::ingress));
    map.add(http_request(kSubmitter, "/compute?a=1", Verdict::forwarded));
    auto response = http_request(kSubmitter, "/compute?a=1", Verdict::forwarded);
    std::swap(response.source, response.destination);
    std::swap(response.source_port, response.destination_port);
    response.is_reply = true;
    response.l7_response = true;
    response.http->code = 200;
    map.add(response);
    map.add(http_request(kHelp, "/compute", Verdict::audit));
    auto drop = connection(kHelp, kAddition, 8091, TrafficDirection::ingress);
    drop.verdict = Verdict::dropped;
    drop.drop_reason = 133;
    map.add(drop);
    auto world = connection({2, "", "", "", {"reserved:world"}}, kSubmitter, 8080,
                            TrafficDirection::ingress);
    map.add(world);

    const auto edges = map.edges();
    ASSERT_EQ(edges.size(), 3u);
    const auto find = [&](const std::string& from) {
        return *std::find_if(edges.begin(), edges.end(),
                             [&](const MapEdge& edge) { return edge.from == from; });
    };
    const auto submitter = find("c1-client/job-submitter");
    EXPECT_EQ(submitter.protocol, "http");
    EXPECT_EQ(submitter.connections, 1u);
    EXPECT_EQ(submitter.requests, 1u);
    EXPECT_EQ(submitter.statuses.at(200), 1u);
    EXPECT_EQ(submitter.calls.at("GET /compute"), 1u);
    const auto help = find("c1-client/help-page");
    EXPECT_EQ(help.audited, 1u);
    EXPECT_EQ(help.dropped, 1u);
    EXPECT_EQ(help.drop_reasons.at("Policy denied"), 1u);
    EXPECT_EQ(find("world").to, "c1-client/job-submitter");

    const auto dot = map.to_dot("test");
    EXPECT_NE(dot.find("subgraph \"cluster_c1-client\""), std::string::npos);
    EXPECT_NE(dot.find("1 DROPPED"), std::string::npos);
    EXPECT_NE(dot.find("#c62828"), std::string::npos);
    EXPECT_NE(dot.find("1 AUDIT"), std::string::npos);
    EXPECT_EQ(ServiceMap::from_json(map.to_json()).to_dot("test"), dot);
    EXPECT_NE(render_dot(dot, "svg").find("<svg"), std::string::npos);
}

}  // namespace
}  // namespace calcmesh::observe
