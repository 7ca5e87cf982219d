#include "service_map.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

#include "calcmesh/process.hpp"

namespace calcmesh::observe {

namespace {

constexpr const char* kWorld = "world";
constexpr const char* kDropColor = "#c62828";
constexpr const char* kAuditColor = "#e67e22";
constexpr const char* kEdgeColor = "#455a64";

std::string quote(const std::string& text) {
    std::string quoted = "\"";
    for (const char c : text) {
        if (c == '"' || c == '\\') {
            quoted += '\\';
        }
        quoted += c;
    }
    return quoted + "\"";
}

std::string upper(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(), ::toupper);
    return text;
}

// The most frequent entries first, at most `limit` of them, "GET /compute x20".
std::string top(const std::map<std::string, std::uint64_t>& counts, std::size_t limit) {
    std::vector<std::pair<std::string, std::uint64_t>> sorted(counts.begin(), counts.end());
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    std::string text;
    for (std::size_t i = 0; i < sorted.size() && i < limit; ++i) {
        text += fmt::format("\\n{} ×{}", sorted[i].first, sorted[i].second);
    }
    if (sorted.size() > limit) {
        text += fmt::format("\\n… {} more", sorted.size() - limit);
    }
    return text;
}

std::string edge_key(const std::string& from, const std::string& to, std::uint16_t port,
                     const std::string& protocol) {
    return fmt::format("{}|{}|{}|{}", from, to, port, protocol);
}

std::string count(std::uint64_t n, const char* noun) {
    return fmt::format("{} {}{}", n, noun, n == 1 ? "" : "s");
}

bool opens_connection(const Flow& flow) {
    constexpr std::uint8_t kSyn = 0x02, kAck = 0x10;
    if (flow.protocol == 6) {
        return (flow.tcp_flags & (kSyn | kAck)) == kSyn;
    }
    return true;
}

}  // namespace

ServiceMap::ServiceMap(std::vector<MapService> services,
                       std::map<std::uint16_t, std::string> l7_ports)
    : services_(std::move(services)), l7_ports_(std::move(l7_ports)) {}

std::string ServiceMap::service_of(const FlowEndpoint& endpoint) {
    std::string id = kWorld;
    std::string name = kWorld;
    if (!endpoint.pod_name.empty()) {
        id = endpoint.cluster_name + "/" + endpoint.pod_name;
        name = endpoint.pod_name;
    } else if (endpoint.identity != 2) {
        id = name = endpoint.identity == 1 ? "host" : "remote-node";
    }
    const auto known = std::find_if(services_.begin(), services_.end(),
                                    [&](const MapService& service) { return service.id == id; });
    if (known == services_.end()) {
        services_.push_back({id, name, endpoint.pod_name.empty() ? "" : endpoint.cluster_name, ""});
    }
    return id;
}

MapEdge& ServiceMap::edge(const std::string& from, const std::string& to, std::uint16_t port,
                          const std::string& protocol) {
    auto& edge = edges_[edge_key(from, to, port, protocol)];
    if (edge.from.empty()) {
        edge.from = from;
        edge.to = to;
        edge.port = port;
        edge.protocol = protocol;
    }
    return edge;
}

void ServiceMap::add(const Flow& flow) {
    // Edges run from client to server, whichever way the packet went.
    const auto& client = flow.is_reply ? flow.destination : flow.source;
    const auto& server = flow.is_reply ? flow.source : flow.destination;
    const auto port = flow.is_reply ? flow.source_port : flow.destination_port;
    const auto l7 = l7_ports_.find(port);
    const auto protocol =
        l7 != l7_ports_.end() && flow.protocol == 6 ? l7->second : flow.protocol_name();
    const auto from = service_of(client);
    const auto to = service_of(server);
    auto& counts = edge(from, to, port, protocol);
    if (flow.verdict == Verdict::dropped) {
        ++counts.dropped;
        ++counts.drop_reasons[drop_reason_text(flow.drop_reason)];
    } else if (flow.l7 && flow.l7_response) {
        if (flow.http) {
            ++counts.statuses[flow.http->code];
        }
    } else if (flow.l7) {
        ++counts.requests;
        if (flow.verdict == Verdict::audit) {
            ++counts.audited;
        }
        if (flow.http) {
            ++counts.calls[flow.http->method + " " + flow.http_path()];
        }
        if (flow.kafka) {
            const auto& kafka = *flow.kafka;
            ++counts.calls[kafka.topic.empty() ? kafka.api_key : kafka.api_key + " " + kafka.topic];
        }
    } else if (!flow.is_reply && opens_connection(flow) &&
               (flow.direction == TrafficDirection::ingress || server.pod_name.empty())) {
        // A connection to a pod is counted where it enters the pod, not again where it left.
        ++counts.connections;
    }
}

std::vector<MapEdge> ServiceMap::edges() const {
    std::vector<MapEdge> result;
    for (const auto& [key, edge] : edges_) {
        if (edge.connections + edge.requests + edge.dropped > 0) {
            result.push_back(edge);
        }
    }
    return result;
}

nlohmann::json ServiceMap::to_json() const {
    nlohmann::json services = nlohmann::json::array();
    for (const auto& service : services_) {
        services.push_back({{"id", service.id},
                            {"name", service.name},
                            {"cluster", service.cluster},
                            {"component", service.component}});
    }
    nlohmann::json edges = nlohmann::json::array();
    for (const auto& edge : this->edges()) {
        nlohmann::json statuses = nlohmann::json::object();
        for (const auto& [code, count] : edge.statuses) {
            statuses[std::to_string(code)] = count;
        }
        edges.push_back({{"from", edge.from},
                         {"to", edge.to},
                         {"port", edge.port},
                         {"protocol", edge.protocol},
                         {"connections", edge.connections},
                         {"requests", edge.requests},
                         {"audited", edge.audited},
                         {"dropped", edge.dropped},
                         {"drop_reasons", edge.drop_reasons},
                         {"calls", edge.calls},
                         {"statuses", statuses}});
    }
    nlohmann::json ports = nlohmann::json::object();
    for (const auto& [port, protocol] : l7_ports_) {
        ports[std::to_string(port)] = protocol;
    }
    return {{"services", services}, {"edges", edges}, {"l7_ports", ports}};
}

ServiceMap ServiceMap::from_json(const nlohmann::json& json) {
    std::vector<MapService> services;
    for (const auto& service : json.at("services")) {
        services.push_back({service.at("id"), service.at("name"), service.value("cluster", ""),
                            service.value("component", "")});
    }
    std::map<std::uint16_t, std::string> ports;
    const auto l7_ports = json.value("l7_ports", nlohmann::json::object());
    for (const auto& [port, protocol] : l7_ports.items()) {
        ports[static_cast<std::uint16_t>(std::stoi(port))] = protocol.get<std::string>();
    }
    ServiceMap map(std::move(services), std::move(ports));
    for (const auto& e : json.at("edges")) {
        auto& edge = map.edge(e.at("from"), e.at("to"), e.at("port"), e.at("protocol"));
        edge.connections = e.value("connections", 0u);
        edge.requests = e.value("requests", 0u);
        edge.audited = e.value("audited", 0u);
        edge.dropped = e.value("dropped", 0u);
        edge.drop_reasons = e.value("drop_reasons", std::map<std::string, std::uint64_t>{});
        edge.calls = e.value("calls", std::map<std::string, std::uint64_t>{});
        const auto statuses = e.value("statuses", nlohmann::json::object());
        for (const auto& [code, count] : statuses.items()) {
            edge.statuses[static_cast<unsigned>(std::stoi(code))] = count.get<std::uint64_t>();
        }
    }
    return map;
}

std::string ServiceMap::to_dot(const std::string& title) const {
    std::string dot = fmt::format(
        "digraph calcmesh {{\n"
        "  graph [rankdir=LR, fontname=\"Helvetica\", fontsize=16, labelloc=t, label={}, "
        "nodesep=0.35, ranksep=1.4, pad=0.3];\n"
        "  node [shape=box, style=\"rounded,filled\", fillcolor=\"#e8f0fe\", color=\"#5c7cba\", "
        "fontname=\"Helvetica\", fontsize=12];\n"
        "  edge [fontname=\"Helvetica\", fontsize=9, color=\"{}\", fontcolor=\"#263238\"];\n",
        quote(title), kEdgeColor);
    std::map<std::string, std::vector<const MapService*>> by_cluster;
    for (const auto& service : services_) {
        by_cluster[service.cluster].push_back(&service);
    }
    for (const auto& [cluster, services] : by_cluster) {
        const auto indent = cluster.empty() ? "  " : "    ";
        if (!cluster.empty()) {
            dot += fmt::format(
                "  subgraph {} {{\n    label={}; style=\"rounded,filled\"; fillcolor=\"#f7f9fc\"; "
                "color=\"#90a4ae\"; fontsize=14;\n",
                quote("cluster_" + cluster), quote(cluster));
        }
        for (const auto* service : services) {
            const auto label = service->component.empty()
                                   ? service->name
                                   : service->name + "\\n" + service->component;
            const auto shape =
                service->cluster.empty() ? ", shape=ellipse, fillcolor=\"#fff8e1\"" : "";
            dot +=
                fmt::format("{}{} [label=\"{}\"{}];\n", indent, quote(service->id), label, shape);
        }
        if (!cluster.empty()) {
            dot += "  }\n";
        }
    }
    for (const auto& edge : edges()) {
        const auto head = fmt::format("{} :{}", upper(edge.protocol), edge.port);
        if (edge.connections + edge.requests > 0) {
            std::string label = head;
            if (edge.requests > 0) {
                label += "\\n" + count(edge.requests, "request") + top(edge.calls, 3);
            }
            if (edge.connections > 0) {
                label += "\\n" + count(edge.connections, "connection");
            }
            for (const auto& [code, count] : edge.statuses) {
                if (code >= 400) {
                    label += fmt::format("\\nHTTP {} ×{}", code, count);
                }
            }
            std::string style;
            if (edge.audited > 0) {
                label += fmt::format("\\n{} AUDIT (L7 policy would deny)", edge.audited);
                style =
                    fmt::format(", color=\"{0}\", fontcolor=\"{0}\", penwidth=1.6", kAuditColor);
            }
            dot += fmt::format("  {} -> {} [label=\"{}\"{}];\n", quote(edge.from), quote(edge.to),
                               label, style);
        }
        if (edge.dropped > 0) {
            std::string label = fmt::format("{}\\n{} DROPPED", head, edge.dropped);
            for (const auto& [reason, count] : edge.drop_reasons) {
                label += fmt::format("\\n{} ×{}", reason, count);
            }
            dot += fmt::format(
                "  {} -> {} [label=\"{}\", color=\"{}\", fontcolor=\"{}\", style=dashed, "
                "penwidth=1.6];\n",
                quote(edge.from), quote(edge.to), label, kDropColor, kDropColor);
        }
    }
    return dot + "}\n";
}

std::string render_dot(const std::string& dot, const std::string& format) {
    ChildProcess::Options options;
    options.argv = {"dot", "-T" + format};
    const auto result = run_captured(options, dot);
    if (result.exit_code != 0) {
        throw std::runtime_error(
            fmt::format("dot -T{} failed ({}): {}", format, result.exit_code, result.errors));
    }
    return result.output;
}

}  // namespace calcmesh::observe
