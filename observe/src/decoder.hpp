#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <tuple>

#include "calcmesh/lab/identity.hpp"
#include "calcmesh/lab/topology.hpp"
#include "flow.hpp"

struct flow_event;  // NOLINT(readability-identifier-naming): the BPF programs' C struct

namespace calcmesh::observe {

/// What the policy in force says about an observed L7 request. The datapath cannot enforce L7
/// rules without a proxy, so a request they would deny is reported as AUDIT.
class L7Audit {
  public:
    virtual ~L7Audit() = default;
    /// FORWARDED if the L7 rules on the server's port allow the request (or there are none),
    /// AUDIT if they would deny it.
    virtual Verdict verdict(const lab::Endpoint& client, const lab::Endpoint& server,
                            std::uint16_t port, const Flow& request) const = 0;
};

/// Turns the flow stage's events into flows: names and labels from the lab's identities, the
/// policy that allowed a connection, HTTP and Kafka messages decoded, HTTP responses paired with
/// their requests (latency), L7 requests audited against the policy in force.
class Decoder {
  public:
    explicit Decoder(const lab::Topology& topology);

    /// Policy names by the rule numbers the datapath reports, and the L7 audit; both replace
    /// the earlier ones (when the policy in force changes).
    void set_policy(std::map<std::uint32_t, PolicyRef> rules, const L7Audit* audit);

    /// The flow of one raw event seen on `node` (a flow_event, or a flow_payload_event for L7),
    /// or nullopt for an event that is not a flow (an L7 payload that is no known message).
    /// `clock_offset_ns` turns the event's monotonic time into Unix time; `interface` names the
    /// device the packet arrived on.
    std::optional<Flow> decode(const lab::Node& node, std::span<const std::uint8_t> raw,
                               std::int64_t clock_offset_ns, const std::string& interface);

  private:
    struct PendingRequest {
        std::int64_t time_ns;
        std::string method;
        std::string url;
        Verdict verdict;
    };
    // client address, client port, server address, server port
    using Connection = std::tuple<std::uint32_t, std::uint16_t, std::uint32_t, std::uint16_t>;

    FlowEndpoint endpoint(const lab::Endpoint& endpoint, std::uint32_t identity) const;
    bool decode_http(const flow_event& event, std::string_view payload, Flow& flow,
                     const lab::Endpoint& source, const lab::Endpoint& destination);
    bool decode_kafka(std::span<const std::uint8_t> payload, Flow& flow,
                      const lab::Endpoint& source, const lab::Endpoint& destination);
    void forget_stale_requests(std::int64_t now_ns);

    const lab::Topology& topology_;
    lab::Identities identities_;
    std::map<std::uint32_t, PolicyRef> rules_;
    const L7Audit* audit_ = nullptr;
    std::map<Connection, std::deque<PendingRequest>> pending_;
};

/// A random (version 4) UUID, as Hubble gives every flow.
std::string random_uuid();

}  // namespace calcmesh::observe
