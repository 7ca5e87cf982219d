#include "flow.hpp"

#include <fmt/format.h>
#include <netinet/in.h>

#include <ctime>
#include <stdexcept>

namespace calcmesh::observe {

namespace {

struct TcpFlag {
    std::uint8_t bit;
    const char* name;
};

// The order Hubble prints them in ("SYN, ACK", "ACK, FIN").
constexpr TcpFlag kTcpFlags[] = {{0x02, "SYN"}, {0x10, "ACK"}, {0x01, "FIN"}, {0x08, "PSH"},
                                 {0x04, "RST"}, {0x20, "URG"}, {0x40, "ECE"}, {0x80, "CWR"}};

struct DropReason {
    int code;
    const char* name;
    const char* text;
};

constexpr DropReason kDropReasons[] = {
    {133, "POLICY_DENIED", "Policy denied"},
    {169, "FIB_LOOKUP_FAILED", "FIB lookup failed"},
    {181, "POLICY_DENY", "Policy denied by denylist"},
};

const char* direction_name(TrafficDirection direction) {
    switch (direction) {
        case TrafficDirection::ingress:
            return "INGRESS";
        case TrafficDirection::egress:
            return "EGRESS";
        case TrafficDirection::unknown:
            break;
    }
    return "TRAFFIC_DIRECTION_UNKNOWN";
}

TrafficDirection parse_direction(const std::string& text) {
    if (text == "INGRESS") {
        return TrafficDirection::ingress;
    }
    if (text == "EGRESS") {
        return TrafficDirection::egress;
    }
    return TrafficDirection::unknown;
}

nlohmann::json endpoint_json(const FlowEndpoint& endpoint) {
    nlohmann::json json = nlohmann::json::object();
    if (endpoint.identity != 0) {
        json["identity"] = endpoint.identity;
    }
    if (!endpoint.cluster_name.empty()) {
        json["cluster_name"] = endpoint.cluster_name;
    }
    if (!endpoint.namespace_.empty()) {
        json["namespace"] = endpoint.namespace_;
    }
    if (!endpoint.labels.empty()) {
        json["labels"] = endpoint.labels;
    }
    if (!endpoint.pod_name.empty()) {
        json["pod_name"] = endpoint.pod_name;
    }
    return json;
}

FlowEndpoint endpoint_from_json(const nlohmann::json& json) {
    FlowEndpoint endpoint;
    endpoint.identity = json.value("identity", 0u);
    endpoint.cluster_name = json.value("cluster_name", "");
    endpoint.namespace_ = json.value("namespace", "");
    endpoint.pod_name = json.value("pod_name", "");
    endpoint.labels = json.value("labels", std::vector<std::string>{});
    return endpoint;
}

nlohmann::json l4_json(const Flow& flow) {
    switch (flow.protocol) {
        case IPPROTO_TCP: {
            nlohmann::json flags = nlohmann::json::object();
            for (const auto& flag : kTcpFlags) {
                if (flow.tcp_flags & flag.bit) {
                    flags[flag.name] = true;
                }
            }
            return {{"TCP",
                     {{"source_port", flow.source_port},
                      {"destination_port", flow.destination_port},
                      {"flags", flags}}}};
        }
        case IPPROTO_UDP:
            return {
                {"UDP",
                 {{"source_port", flow.source_port}, {"destination_port", flow.destination_port}}}};
        case IPPROTO_ICMP:
            return {{"ICMPv4", nlohmann::json::object()}};
    }
    return nlohmann::json::object();
}

void l4_from_json(const nlohmann::json& l4, Flow& flow) {
    const auto ports = [&](const nlohmann::json& json) {
        flow.source_port = json.value("source_port", std::uint16_t{0});
        flow.destination_port = json.value("destination_port", std::uint16_t{0});
    };
    if (l4.contains("TCP")) {
        flow.protocol = IPPROTO_TCP;
        ports(l4["TCP"]);
        const auto flags = l4["TCP"].value("flags", nlohmann::json::object());
        for (const auto& flag : kTcpFlags) {
            if (flags.value(flag.name, false)) {
                flow.tcp_flags |= flag.bit;
            }
        }
    } else if (l4.contains("UDP")) {
        flow.protocol = IPPROTO_UDP;
        ports(l4["UDP"]);
    } else if (l4.contains("ICMPv4")) {
        flow.protocol = IPPROTO_ICMP;
    }
}

const char* observation_point(const Flow& flow) {
    if (flow.event_type != kMessageTypeTrace) {
        return nullptr;
    }
    return flow.event_sub_type == 3 ? "TO_STACK" : "TO_ENDPOINT";
}

}  // namespace

std::string Flow::protocol_name() const {
    if (http) {
        return "http";
    }
    if (kafka) {
        return "kafka";
    }
    switch (protocol) {
        case IPPROTO_TCP:
            return "tcp";
        case IPPROTO_UDP:
            return "udp";
        case IPPROTO_ICMP:
            return "icmp";
    }
    return fmt::format("ip-proto-{}", protocol);
}

std::string Flow::http_path() const {
    if (!http) {
        return {};
    }
    // http://host/path?query
    const auto& url = http->url;
    const auto scheme = url.find("://");
    const auto start = scheme == std::string::npos ? 0 : url.find('/', scheme + 3);
    if (start == std::string::npos) {
        return "/";
    }
    return url.substr(start, url.find('?', start) - start);
}

std::string to_string(Verdict verdict) {
    switch (verdict) {
        case Verdict::forwarded:
            return "FORWARDED";
        case Verdict::dropped:
            return "DROPPED";
        case Verdict::audit:
            return "AUDIT";
    }
    return "VERDICT_UNKNOWN";
}

Verdict parse_verdict(const std::string& text) {
    for (const auto verdict : {Verdict::forwarded, Verdict::dropped, Verdict::audit}) {
        if (to_string(verdict) == text) {
            return verdict;
        }
    }
    throw std::invalid_argument(
        fmt::format("unknown verdict '{}' (use FORWARDED, DROPPED or AUDIT)", text));
}

std::string drop_reason_name(int reason) {
    for (const auto& drop : kDropReasons) {
        if (drop.code == reason) {
            return drop.name;
        }
    }
    return "DROP_REASON_UNKNOWN";
}

std::string drop_reason_text(int reason) {
    for (const auto& drop : kDropReasons) {
        if (drop.code == reason) {
            return drop.text;
        }
    }
    return fmt::format("Unknown drop reason {}", reason);
}

std::string rfc3339(std::int64_t time_ns) {
    const std::time_t seconds = time_ns / 1'000'000'000;
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char text[32];
    std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &utc);
    return fmt::format("{}.{:09}Z", text, time_ns % 1'000'000'000);
}

std::int64_t parse_rfc3339(const std::string& text) {
    std::tm utc{};
    const char* rest = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &utc);
    if (rest == nullptr) {
        throw std::invalid_argument("not an RFC 3339 time: " + text);
    }
    std::int64_t nanos = 0;
    if (*rest == '.') {
        int digits = 0;
        for (++rest; *rest >= '0' && *rest <= '9'; ++rest, ++digits) {
            nanos = nanos * 10 + (*rest - '0');
        }
        for (; digits < 9; ++digits) {
            nanos *= 10;
        }
    }
    return static_cast<std::int64_t>(timegm(&utc)) * 1'000'000'000 + nanos;
}

nlohmann::json to_json(const Flow& flow) {
    nlohmann::json f = nlohmann::json::object();
    f["time"] = rfc3339(flow.time_ns);
    f["uuid"] = flow.uuid;
    f["verdict"] = to_string(flow.verdict);
    if (flow.verdict == Verdict::dropped) {
        f["drop_reason"] = flow.drop_reason;
    }
    f["IP"] = {
        {"source", flow.source_ip}, {"destination", flow.destination_ip}, {"ipVersion", "IPv4"}};
    f["l4"] = l4_json(flow);
    f["source"] = endpoint_json(flow.source);
    f["destination"] = endpoint_json(flow.destination);
    f["Type"] = flow.l7 ? "L7" : "L3_L4";
    f["node_name"] = flow.node_name;
    if (flow.l7) {
        nlohmann::json l7 = {{"type", flow.l7_response ? "RESPONSE" : "REQUEST"}};
        if (flow.latency_ns != 0) {
            l7["latency_ns"] = std::to_string(flow.latency_ns);  // uint64: a string in protojson
        }
        if (flow.http) {
            nlohmann::json http = {{"method", flow.http->method},
                                   {"url", flow.http->url},
                                   {"protocol", flow.http->protocol}};
            if (flow.http->code != 0) {
                http["code"] = flow.http->code;
            }
            l7["http"] = http;
        }
        if (flow.kafka) {
            nlohmann::json kafka = {{"api_version", flow.kafka->api_version},
                                    {"api_key", flow.kafka->api_key},
                                    {"correlation_id", flow.kafka->correlation_id}};
            if (flow.kafka->error_code != 0) {
                kafka["error_code"] = flow.kafka->error_code;
            }
            if (!flow.kafka->topic.empty()) {
                kafka["topic"] = flow.kafka->topic;
            }
            l7["kafka"] = kafka;
        }
        f["l7"] = l7;
    }
    f["is_reply"] = flow.is_reply;
    nlohmann::json event_type = {{"type", flow.event_type}};
    if (flow.event_sub_type != 0) {
        event_type["sub_type"] = flow.event_sub_type;
    }
    f["event_type"] = event_type;
    f["traffic_direction"] = direction_name(flow.direction);
    if (const char* point = observation_point(flow)) {
        f["trace_observation_point"] = point;
    }
    if (flow.verdict == Verdict::dropped) {
        f["drop_reason_desc"] = drop_reason_name(flow.drop_reason);
    }
    if (!flow.interface_name.empty()) {
        f["interface"] = {{"name", flow.interface_name}};
    }
    if (!flow.allowed_by.empty()) {
        nlohmann::json policies = nlohmann::json::array();
        for (const auto& policy : flow.allowed_by) {
            nlohmann::json entry = {{"name", policy.name}, {"kind", policy.kind}};
            if (!policy.namespace_.empty()) {
                entry["namespace"] = policy.namespace_;
            }
            policies.push_back(entry);
        }
        const bool ingress = flow.direction == TrafficDirection::ingress;
        f[ingress ? "ingress_allowed_by" : "egress_allowed_by"] = policies;
    }
    f["Summary"] = flow.summary;
    return {{"flow", f}, {"node_name", flow.node_name}, {"time", rfc3339(flow.time_ns)}};
}

nlohmann::json to_json(const LostEvents& lost) {
    return {
        {"lost_events", {{"source", lost.source}, {"num_events_lost", std::to_string(lost.count)}}},
        {"node_name", lost.node_name},
        {"time", rfc3339(lost.time_ns)}};
}

Flow flow_from_json(const nlohmann::json& json) {
    const auto& f = json.at("flow");
    Flow flow;
    flow.time_ns = parse_rfc3339(f.at("time").get<std::string>());
    flow.uuid = f.value("uuid", "");
    flow.verdict = parse_verdict(f.at("verdict").get<std::string>());
    flow.drop_reason = f.value("drop_reason", 0);
    const auto& ip = f.at("IP");
    flow.source_ip = ip.value("source", "");
    flow.destination_ip = ip.value("destination", "");
    l4_from_json(f.value("l4", nlohmann::json::object()), flow);
    flow.source = endpoint_from_json(f.value("source", nlohmann::json::object()));
    flow.destination = endpoint_from_json(f.value("destination", nlohmann::json::object()));
    flow.l7 = f.value("Type", "") == "L7";
    flow.node_name = f.value("node_name", "");
    if (f.contains("l7")) {
        const auto& l7 = f["l7"];
        flow.l7_response = l7.value("type", "") == "RESPONSE";
        flow.latency_ns = std::stoull(l7.value("latency_ns", "0"));
        if (l7.contains("http")) {
            const auto& http = l7["http"];
            flow.http = HttpInfo{http.value("code", 0u), http.value("method", ""),
                                 http.value("url", ""), http.value("protocol", "")};
        }
        if (l7.contains("kafka")) {
            const auto& kafka = l7["kafka"];
            flow.kafka = KafkaInfo{kafka.value("error_code", 0), kafka.value("api_version", 0),
                                   kafka.value("api_key", ""), kafka.value("correlation_id", 0),
                                   kafka.value("topic", "")};
        }
    }
    flow.is_reply = f.value("is_reply", false);
    const auto event_type = f.value("event_type", nlohmann::json::object());
    flow.event_type = event_type.value("type", 0);
    flow.event_sub_type = event_type.value("sub_type", 0);
    flow.direction = parse_direction(f.value("traffic_direction", ""));
    if (f.contains("interface")) {
        flow.interface_name = f["interface"].value("name", "");
    }
    for (const char* key : {"ingress_allowed_by", "egress_allowed_by"}) {
        for (const auto& policy : f.value(key, nlohmann::json::array())) {
            flow.allowed_by.push_back({policy.value("name", ""), policy.value("namespace", ""),
                                       policy.value("kind", "")});
        }
    }
    flow.summary = f.value("Summary", "");
    return flow;
}

LostEvents lost_from_json(const nlohmann::json& json) {
    const auto& lost = json.at("lost_events");
    return {parse_rfc3339(json.at("time").get<std::string>()), json.value("node_name", ""),
            lost.value("source", ""), std::stoull(lost.value("num_events_lost", "0"))};
}

}  // namespace calcmesh::observe
