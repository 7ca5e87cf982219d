#include "decoder.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <cstring>
#include <random>

#include "calcmesh/lab/flows.hpp"
#include "l7.hpp"

namespace calcmesh::observe {

namespace {

// Requests without a response after this long are forgotten (a connection that broke).
constexpr std::int64_t kPendingTimeoutNs = 60'000'000'000;
constexpr std::size_t kPendingCheckSize = 4096;

std::string l4_summary(const flow_event& event) {
    switch (event.protocol) {
        case IPPROTO_TCP: {
            constexpr std::pair<std::uint8_t, const char*> kFlags[] = {
                {0x02, "SYN"}, {0x10, "ACK"}, {0x01, "FIN"}, {0x08, "PSH"}, {0x04, "RST"}};
            std::string flags;
            for (const auto& [bit, name] : kFlags) {
                if (event.tcp_flags & bit) {
                    flags += (flags.empty() ? "" : ", ") + std::string(name);
                }
            }
            return "TCP Flags: " + flags;
        }
        case IPPROTO_UDP:
            return "UDP";
        case IPPROTO_ICMP:
            return "ICMPv4";
    }
    return fmt::format("IP protocol {}", event.protocol);
}

std::string address(std::uint32_t network_order) {
    return lab::Ipv4{ntohl(network_order)}.str();
}

}  // namespace

std::string random_uuid() {
    thread_local std::mt19937_64 random{std::random_device{}()};
    const auto high = random();
    const auto low = random();
    // Version 4 in the 13th hex digit, the RFC 4122 variant in the 17th.
    return fmt::format("{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}", high >> 32, (high >> 16) & 0xffff,
                       high & 0x0fff, ((low >> 48) & 0x3fff) | 0x8000, low & 0xffffffffffff);
}

Decoder::Decoder(const lab::Topology& topology) : topology_(topology), identities_(topology) {}

void Decoder::set_policy(std::map<std::uint32_t, PolicyRef> rules, const L7Audit* audit) {
    rules_ = std::move(rules);
    audit_ = audit;
}

FlowEndpoint Decoder::endpoint(const lab::Endpoint& endpoint, std::uint32_t identity) const {
    FlowEndpoint result;
    result.identity = identity;
    result.cluster_name = endpoint.cluster;
    result.namespace_ = endpoint.namespace_;
    result.pod_name = endpoint.pod;
    result.labels = endpoint.label_strings();
    return result;
}

std::optional<Flow> Decoder::decode(const lab::Node& node, std::span<const std::uint8_t> raw,
                                    std::int64_t clock_offset_ns, const std::string& interface) {
    flow_event event;
    if (raw.size() < sizeof(event)) {
        return std::nullopt;
    }
    std::memcpy(&event, raw.data(), sizeof(event));

    const auto source = identities_.resolve(lab::Ipv4{ntohl(event.saddr)}, node.name);
    const auto destination = identities_.resolve(lab::Ipv4{ntohl(event.daddr)}, node.name);
    Flow flow;
    flow.time_ns = static_cast<std::int64_t>(event.time_ns) + clock_offset_ns;
    flow.uuid = random_uuid();
    flow.source_ip = address(event.saddr);
    flow.destination_ip = address(event.daddr);
    flow.protocol = event.protocol;
    flow.source_port = event.sport;
    flow.destination_port = event.dport;
    flow.tcp_flags = event.tcp_flags;
    flow.source = endpoint(source, event.src_identity);
    flow.destination = endpoint(destination, event.dst_identity);
    flow.node_name = topology_.cluster(node.cluster_id).name + "/" + node.name;
    flow.is_reply = event.is_reply != 0;
    flow.direction =
        event.direction == DIRECTION_INGRESS ? TrafficDirection::ingress : TrafficDirection::egress;
    flow.interface_name = interface;
    if (const auto rule = rules_.find(event.rule); event.rule != 0 && rule != rules_.end()) {
        flow.allowed_by.push_back(rule->second);
    }

    switch (event.kind) {
        case FLOW_TRACE:
            flow.event_type = kMessageTypeTrace;
            flow.event_sub_type = event.observation;
            flow.summary = l4_summary(event);
            return flow;
        case FLOW_DROP:
            flow.verdict = Verdict::dropped;
            flow.drop_reason = event.drop_reason;
            flow.event_type = kMessageTypeDrop;
            flow.event_sub_type = event.drop_reason;
            flow.summary = l4_summary(event);
            return flow;
        case FLOW_L7: {
            if (raw.size() < sizeof(flow_payload_event) || event.payload_len > FLOW_PAYLOAD_MAX) {
                return std::nullopt;
            }
            const auto payload =
                raw.subspan(offsetof(flow_payload_event, payload), event.payload_len);
            flow.l7 = true;
            flow.event_type = kMessageTypeAccessLog;
            const bool decoded =
                event.l7 == L7_HTTP
                    ? decode_http(event,
                                  {reinterpret_cast<const char*>(payload.data()), payload.size()},
                                  flow, source, destination)
                    : decode_kafka(payload, flow, source, destination);
            if (!decoded) {
                return std::nullopt;
            }
            return flow;
        }
    }
    return std::nullopt;
}

bool Decoder::decode_http(const flow_event& event, std::string_view payload, Flow& flow,
                          const lab::Endpoint& source, const lab::Endpoint& destination) {
    const auto message = parse_http(payload);
    if (!message) {
        return false;
    }
    forget_stale_requests(flow.time_ns);
    if (!message->response) {
        const auto host =
            !message->host.empty()
                ? message->host
                : fmt::format("{}:{}",
                              destination.pod.empty() ? flow.destination_ip : destination.pod,
                              flow.destination_port);
        flow.http =
            HttpInfo{0, message->method, "http://" + host + message->target, message->protocol};
        flow.verdict = audit_ ? audit_->verdict(source, destination, flow.destination_port, flow)
                              : Verdict::forwarded;
        pending_[{event.saddr, event.sport, event.daddr, event.dport}].push_back(
            {flow.time_ns, flow.http->method, flow.http->url, flow.verdict});
        flow.summary = fmt::format("{} {} {}", message->protocol, message->method, flow.http->url);
        return true;
    }
    flow.l7_response = true;
    flow.http = HttpInfo{message->status, "", "", message->protocol};
    auto& queue = pending_[{event.daddr, event.dport, event.saddr, event.sport}];
    if (queue.empty()) {
        pending_.erase({event.daddr, event.dport, event.saddr, event.sport});
        flow.summary = fmt::format("{} {}", message->protocol, message->status);
        return true;
    }
    const auto request = queue.front();
    queue.pop_front();
    flow.http->method = request.method;
    flow.http->url = request.url;
    flow.verdict = request.verdict;
    flow.latency_ns =
        static_cast<std::uint64_t>(std::max<std::int64_t>(0, flow.time_ns - request.time_ns));
    flow.summary = fmt::format("{} {} {}ms ({} {})", message->protocol, message->status,
                               flow.latency_ns / 1'000'000, request.method, request.url);
    return true;
}

bool Decoder::decode_kafka(std::span<const std::uint8_t> payload, Flow& flow,
                           const lab::Endpoint& source, const lab::Endpoint& destination) {
    const auto request = parse_kafka_request(payload);
    if (!request) {
        return false;
    }
    flow.kafka = KafkaInfo{0, request->api_version, kafka_api_name(request->api_key),
                           request->correlation_id, request->topic};
    flow.verdict = audit_ ? audit_->verdict(source, destination, flow.destination_port, flow)
                          : Verdict::forwarded;
    flow.summary = fmt::format("Kafka request {} v{} correlation id {}", flow.kafka->api_key,
                               request->api_version, request->correlation_id);
    if (!request->topic.empty()) {
        flow.summary += fmt::format(" topic '{}'", request->topic);
    }
    if (!request->client_id.empty()) {
        flow.summary += fmt::format(" client id '{}'", request->client_id);
    }
    return true;
}

void Decoder::forget_stale_requests(std::int64_t now_ns) {
    if (pending_.size() < kPendingCheckSize) {
        return;
    }
    std::erase_if(pending_, [&](const auto& entry) {
        return entry.second.empty() || now_ns - entry.second.back().time_ns > kPendingTimeoutNs;
    });
}

}  // namespace calcmesh::observe
