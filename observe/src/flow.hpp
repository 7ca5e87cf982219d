#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace calcmesh::observe {

/// Hubble's verdicts that the lab produces.
enum class Verdict { forwarded, dropped, audit };

enum class TrafficDirection { unknown, ingress, egress };

/// Cilium's monitor message types (Hubble's event_type.type).
constexpr int kMessageTypeDrop = 1;
constexpr int kMessageTypeTrace = 4;
constexpr int kMessageTypeAccessLog = 129;

/// One side of a flow, as Hubble's `Endpoint`.
struct FlowEndpoint {
    std::uint32_t identity = 0;
    std::string cluster_name;
    std::string namespace_;
    std::string pod_name;
    std::vector<std::string> labels;  ///< "k8s:key=value" or "reserved:world"
};

struct HttpInfo {
    unsigned code = 0;  ///< 0 for a request
    std::string method;
    std::string url;
    std::string protocol;  ///< "HTTP/1.1"
};

struct KafkaInfo {
    int error_code = 0;
    int api_version = 0;
    std::string api_key;  ///< Cilium's names: "produce", "fetch", "metadata", ...
    int correlation_id = 0;
    std::string topic;
};

/// The policy that allowed a flow (Hubble's `Policy`).
struct PolicyRef {
    std::string name;
    std::string namespace_;
    std::string kind;  ///< CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy
};

/// One flow in Hubble's model: an L3/L4 event (new connection, reply, FIN/RST, drop) or an L7
/// request or response. Field names follow Hubble's flow JSON (see `to_json`).
struct Flow {
    std::int64_t time_ns = 0;  ///< since the Unix epoch
    std::string uuid;
    Verdict verdict = Verdict::forwarded;
    int drop_reason = 0;  ///< Cilium's drop code, 0 unless dropped
    std::string source_ip;
    std::string destination_ip;
    std::uint8_t protocol = 0;  ///< IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP
    std::uint16_t source_port = 0;
    std::uint16_t destination_port = 0;
    std::uint8_t tcp_flags = 0;
    FlowEndpoint source;
    FlowEndpoint destination;
    std::string node_name;  ///< "<cluster>/<node>"
    bool is_reply = false;
    int event_type = kMessageTypeTrace;
    int event_sub_type = 0;
    TrafficDirection direction = TrafficDirection::unknown;
    std::string interface_name;
    std::vector<PolicyRef> allowed_by;  ///< ingress_allowed_by or egress_allowed_by

    bool l7 = false;  ///< Type L7, else L3_L4
    bool l7_response = false;
    std::uint64_t latency_ns = 0;
    std::optional<HttpInfo> http;
    std::optional<KafkaInfo> kafka;
    std::string summary;

    /// "http", "kafka", or the L4 protocol ("tcp", "udp", "icmp").
    std::string protocol_name() const;
    /// The URL path of an HTTP flow, without the query; empty otherwise.
    std::string http_path() const;
};

/// Events lost before they reached the flow store (Hubble's `LostEvent`).
struct LostEvents {
    std::int64_t time_ns = 0;
    std::string node_name;
    std::string source;  ///< PERF_EVENT_RING_BUFFER or HUBBLE_RING_BUFFER
    std::uint64_t count = 0;
};

std::string to_string(Verdict verdict);
/// Throws std::invalid_argument naming the accepted verdicts.
Verdict parse_verdict(const std::string& text);

/// Hubble's name of a Cilium drop code, e.g. "POLICY_DENIED".
std::string drop_reason_name(int reason);
/// The text Cilium's monitor prints for it, e.g. "Policy denied".
std::string drop_reason_text(int reason);

/// A flow as a line of `hubble observe -o json`: {"flow":{...},"node_name":..,"time":..}.
nlohmann::json to_json(const Flow& flow);
/// A loss as Hubble reports it: {"lost_events":{...},"node_name":..,"time":..}.
nlohmann::json to_json(const LostEvents& lost);
/// Reads a flow back from `to_json` output; throws nlohmann::json::exception on other input.
Flow flow_from_json(const nlohmann::json& json);
LostEvents lost_from_json(const nlohmann::json& json);

/// RFC 3339 with nanoseconds in UTC, as Hubble's JSON has it.
std::string rfc3339(std::int64_t time_ns);
std::int64_t parse_rfc3339(const std::string& text);

}  // namespace calcmesh::observe
