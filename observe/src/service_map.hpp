#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "flow.hpp"

namespace calcmesh::observe {

/// A box of the map: a workload of a cluster, or the world outside.
struct MapService {
    std::string id;  ///< "<cluster>/<pod>", or "world"
    std::string name;
    std::string cluster;    ///< empty for the world
    std::string component;  ///< app.kubernetes.io/component
};

/// The traffic from one service to another on one port, counted once per connection or request
/// although a flow crossing two nodes is observed on both.
struct MapEdge {
    std::string from;
    std::string to;
    std::uint16_t port = 0;
    std::string protocol;           ///< http, kafka, tcp, udp, icmp
    std::uint64_t connections = 0;  ///< forwarded new connections
    std::uint64_t requests = 0;     ///< L7 requests
    std::uint64_t audited = 0;      ///< L7 requests the policy would deny (AUDIT)
    std::uint64_t dropped = 0;      ///< dropped packets
    std::map<std::string, std::uint64_t> drop_reasons;  ///< "Policy denied" -> count
    std::map<std::string, std::uint64_t> calls;         ///< "GET /compute", "produce results"
    std::map<unsigned, std::uint64_t> statuses;         ///< HTTP response codes
};

/// The service map, as Hubble UI draws it: services grouped by cluster, edges with protocol,
/// request counts and verdicts. Built from flows as they are observed.
class ServiceMap {
  public:
    /// `services` are shown even before they carry traffic; `l7_ports` names the protocol of an
    /// edge by its port (e.g. 8091 -> http, 9092 -> kafka).
    ServiceMap(std::vector<MapService> services, std::map<std::uint16_t, std::string> l7_ports);

    void add(const Flow& flow);

    const std::vector<MapService>& services() const { return services_; }
    std::vector<MapEdge> edges() const;

    nlohmann::json to_json() const;
    static ServiceMap from_json(const nlohmann::json& json);

    /// The map in Graphviz's language: a subgraph per cluster, drops in red, audits in orange.
    std::string to_dot(const std::string& title) const;

  private:
    std::string service_of(const FlowEndpoint& endpoint);
    MapEdge& edge(const std::string& from, const std::string& to, std::uint16_t port,
                  const std::string& protocol);

    std::vector<MapService> services_;
    std::map<std::uint16_t, std::string> l7_ports_;
    std::map<std::string, MapEdge> edges_;  ///< by "from|to|port|protocol"
};

/// Renders DOT text with Graphviz's `dot` into `format` (svg, png); throws std::runtime_error
/// with dot's message if it fails.
std::string render_dot(const std::string& dot, const std::string& format);

}  // namespace calcmesh::observe
