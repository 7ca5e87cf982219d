#include "calcmesh/policy/matrix.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "calcmesh/kube/yaml.hpp"

namespace calcmesh::policy {

namespace {

std::string_view verdict_name(Verdict verdict) {
    switch (verdict) {
        case Verdict::allowed:
            return "allowed";
        case Verdict::restricted:
            return "restricted";
        case Verdict::rejected:
            return "rejected";
        case Verdict::dropped:
            break;
    }
    return "dropped";
}

std::string port_text(int port, Protocol protocol) {
    return std::to_string(port) + "/" + std::string(to_string(protocol));
}

/// What passes: "allowed", or "L7 http: GET /about | ..." with the L7 allow-list of the side(s)
/// that restrict it.
std::string verdict_text(const Decision& decision) {
    if (decision.verdict != Verdict::restricted) {
        return std::string(to_string(decision.verdict));
    }
    std::string text = "L7";
    for (const SideDecision& side : decision.sides) {
        if (side.verdict != Verdict::restricted) {
            continue;
        }
        // Entries read "http GET /about": the kind once, then the rules.
        std::string kind;
        for (std::size_t i = 0; i < side.l7_allowed.size(); ++i) {
            const auto& rule = side.l7_allowed[i];
            const auto space = rule.find(' ');
            const auto rule_kind = rule.substr(0, space);
            text += rule_kind == kind ? " | " : (i == 0 ? " " : "; ") + rule_kind + ": ";
            text += rule.substr(space + 1);
            kind = rule_kind;
        }
    }
    return text;
}

std::vector<std::string> names(const YAML::Node& node) {
    if (node.IsScalar()) {
        return {node.as<std::string>()};
    }
    return node.as<std::vector<std::string>>();
}

std::string list_text(const std::vector<std::string>& items) {
    std::string text;
    for (const auto& item : items) {
        text += (text.empty() ? "" : ", ") + item;
    }
    return text;
}

bool names_party(const std::vector<std::string>& names, const Peer& party,
                 const Inventory& inventory) {
    for (const auto& name : names) {
        if (party.kind == Peer::Kind::entity) {
            if (name == to_string(party.entity)) {
                return true;
            }
        } else if (party.kind == Peer::Kind::endpoint) {
            const Endpoint& endpoint = inventory[party.endpoint];
            if (name == endpoint.name || (name == "*" && !endpoint.external)) {
                return true;
            }
        }
    }
    return false;
}

bool flow_port_matches(const IntendedFlow& flow, const MatrixRow& row, const Inventory& inventory) {
    if (flow.protocol != row.protocol) {
        return false;
    }
    if (flow.port == std::to_string(row.port)) {
        return true;
    }
    if (row.to.kind != Peer::Kind::endpoint) {
        return false;
    }
    const EndpointPort* port = inventory[row.to.endpoint].find_port(flow.port);
    return port != nullptr && port->port == row.port;
}

std::string row_text(const MatrixRow& row, const Inventory& inventory) {
    return row.from.to_string(inventory) + " -> " + row.to.to_string(inventory) + " " +
           port_text(row.port, row.protocol);
}

std::string rules_of(const Decision& decision) {
    std::string text;
    for (const SideDecision& side : decision.sides) {
        if (!side.reason.empty()) {
            text += (text.empty() ? "" : "; ") + std::string(to_string(side.direction)) + ": " +
                    side.reason;
        }
    }
    return text;
}

}  // namespace

std::vector<MatrixRow> matrix_pairs(const Inventory& inventory) {
    std::vector<Peer> sources;
    sources.reserve(inventory.size() + 2);  // and the world and the host
    for (std::size_t i = 0; i < inventory.size(); ++i) {
        sources.push_back(Peer::of(i));
    }
    sources.push_back(Peer::of(Entity::world));
    sources.push_back(Peer::of(Entity::host));
    struct Destination {
        Peer peer;
        int port;
        Protocol protocol;
    };
    std::vector<Destination> destinations;
    for (std::size_t j = 0; j < inventory.size(); ++j) {
        for (const EndpointPort& port : inventory[j].ports) {
            destinations.push_back({Peer::of(j), port.port, port.protocol});
        }
    }
    destinations.push_back({Peer::of(Entity::world), kWorldPort, Protocol::tcp});

    const auto external = [&](const Peer& peer) {
        return peer.kind != Peer::Kind::endpoint || inventory[peer.endpoint].external;
    };
    std::vector<MatrixRow> rows;
    for (const Peer& from : sources) {
        for (const Destination& to : destinations) {
            if (!(external(from) && external(to.peer))) {
                rows.push_back({from, to.peer, to.port, to.protocol, {}, {}});
            }
        }
    }
    return rows;
}

std::vector<MatrixRow> build_matrix(const CompiledPolicy& compiled, const Inventory& inventory) {
    std::vector<MatrixRow> rows = matrix_pairs(inventory);
    for (MatrixRow& row : rows) {
        row.decision = decide(compiled, row.from, row.to, row.port, row.protocol);
    }
    return rows;
}

std::vector<Request> probes_for(const MatrixRow& row, const std::vector<Request>& probes) {
    std::vector<Request> applying;
    if (row.decision.verdict != Verdict::restricted) {
        return applying;
    }
    const auto restricted_by = [&](std::string_view kind) {
        return std::any_of(
            row.decision.sides.begin(), row.decision.sides.end(), [&](const SideDecision& side) {
                return std::any_of(side.l7_allowed.begin(), side.l7_allowed.end(),
                                   [&](const std::string& rule) { return rule.starts_with(kind); });
            });
    };
    for (const Request& probe : probes) {
        if ((probe.kind == Request::Kind::http && restricted_by("http ")) ||
            (probe.kind == Request::Kind::kafka && restricted_by("kafka "))) {
            applying.push_back(probe);
        }
    }
    return applying;
}

std::string matrix_text(const std::vector<MatrixRow>& rows, const Inventory& inventory, bool all) {
    std::size_t from_width = 4;
    std::size_t to_width = 2;
    for (const MatrixRow& row : rows) {
        from_width = std::max(from_width, row.from.to_string(inventory).size());
        to_width = std::max(to_width, row.to.to_string(inventory).size());
    }
    std::ostringstream out;
    out << std::left << std::setw(static_cast<int>(from_width) + 2) << "FROM"
        << std::setw(static_cast<int>(to_width) + 2) << "TO" << std::setw(11) << "PORT"
        << "VERDICT\n";
    std::size_t connects = 0;
    std::size_t with_l7 = 0;
    for (const MatrixRow& row : rows) {
        connects += row.decision.connects();
        with_l7 += row.decision.verdict == Verdict::restricted;
        if (!all && !row.decision.connects()) {
            continue;
        }
        out << std::setw(static_cast<int>(from_width) + 2) << row.from.to_string(inventory)
            << std::setw(static_cast<int>(to_width) + 2) << row.to.to_string(inventory)
            << std::setw(11) << port_text(row.port, row.protocol) << verdict_text(row.decision)
            << "\n";
    }
    out << rows.size() << " pairs: " << connects << " connect (" << with_l7
        << " of them through L7 rules), " << rows.size() - connects << " dropped\n";
    return out.str();
}

nlohmann::json matrix_json(const std::vector<MatrixRow>& rows, const Inventory& inventory) {
    auto result = nlohmann::json::array();
    for (const MatrixRow& row : rows) {
        auto sides = nlohmann::json::array();
        for (const SideDecision& side : row.decision.sides) {
            auto rules = nlohmann::json::array();
            for (const RuleRef& rule : side.rules) {
                rules.push_back(
                    {{"file", rule.file}, {"policy", rule.policy}, {"field", rule.field}});
            }
            sides.push_back({{"direction", to_string(side.direction)},
                             {"endpoint", inventory[side.endpoint].to_string()},
                             {"verdict", verdict_name(side.verdict)},
                             {"rules", rules},
                             {"l7_allowed", side.l7_allowed},
                             {"reason", side.reason}});
        }
        auto requests = nlohmann::json::array();
        for (const ProbeResult& probe : row.probes) {
            requests.push_back({{"request", probe.request.to_string()},
                                {"verdict", verdict_name(probe.decision.verdict)}});
        }
        result.push_back({{"from", row.from.to_string(inventory)},
                          {"to", row.to.to_string(inventory)},
                          {"port", row.port},
                          {"protocol", to_string(row.protocol)},
                          {"verdict", verdict_name(row.decision.verdict)},
                          {"sides", sides},
                          {"requests", requests}});
    }
    return result;
}

Result<std::vector<IntendedFlow>> parse_intended(const std::string& file, const std::string& yaml) {
    std::vector<IntendedFlow> flows;
    std::string field = "flows";
    auto document = kube::load_yaml_document(yaml);
    if (!document) {
        return fail(ErrorCode::invalid_field, file + ": " + document.error().message);
    }
    try {
        const YAML::Node list = document.value()["flows"];
        if (!list.IsSequence()) {
            return fail(ErrorCode::invalid_field, file + ": flows: expected a list");
        }
        for (std::size_t i = 0; i < list.size(); ++i) {
            field = "flows[" + std::to_string(i) + "]";
            const YAML::Node item = list[i];
            for (const auto& entry : item) {
                static const std::vector<std::string> kKeys = {
                    "from", "to", "port", "protocol", "allow", "deny", "l7", "same-cluster"};
                const auto key = entry.first.as<std::string>();
                if (std::find(kKeys.begin(), kKeys.end(), key) == kKeys.end()) {
                    return fail(ErrorCode::unknown_field,
                                file + ": " + field + "." + key + ": unknown field");
                }
            }
            IntendedFlow flow;
            flow.field = field;
            flow.from = names(item["from"]);
            flow.to = names(item["to"]);
            flow.port = item["port"].as<std::string>();
            const auto protocol = parse_protocol(item["protocol"].as<std::string>("TCP"));
            if (!protocol || *protocol == Protocol::any) {
                return fail(ErrorCode::invalid_field,
                            file + ": " + field + ".protocol: TCP, UDP or SCTP");
            }
            flow.protocol = *protocol;
            flow.allow = item["allow"].as<std::vector<std::string>>(std::vector<std::string>{});
            flow.deny = item["deny"].as<std::vector<std::string>>(std::vector<std::string>{});
            const auto l7 = item["l7"].as<std::string>("required");
            if (l7 != "required" && l7 != "optional") {
                return fail(ErrorCode::invalid_field,
                            file + ": " + field + ".l7: required or optional");
            }
            flow.l7_optional = l7 == "optional";
            flow.same_cluster = item["same-cluster"].as<bool>(false);
            for (const auto* probes : {&flow.allow, &flow.deny}) {
                for (const auto& probe : *probes) {
                    if (parse_probe(probe).empty()) {
                        return fail(ErrorCode::invalid_field,
                                    file + ": " + field + ": '" + probe +
                                        "' is neither \"METHOD /path\" nor "
                                        "\"produce|consume|<apikey> TOPIC\"");
                    }
                }
            }
            flows.push_back(std::move(flow));
        }
    } catch (const YAML::Exception& error) {
        return fail(ErrorCode::invalid_field, file + ": " + field + ": " + error.what());
    }
    return flows;
}

std::vector<Request> parse_probe(const std::string& text) {
    const auto space = text.find(' ');
    const std::string first = text.substr(0, space);
    const std::string rest = space == std::string::npos ? "" : text.substr(space + 1);
    if (!rest.empty() && rest.front() == '/' && !first.empty() &&
        std::all_of(first.begin(), first.end(),
                    [](unsigned char c) { return std::isupper(c) != 0; })) {
        return {Request::http(first, rest)};
    }
    return kafka_operation(first, rest);
}

std::vector<std::string> compare(const std::vector<MatrixRow>& rows,
                                 const std::vector<IntendedFlow>& flows,
                                 const CompiledPolicy& compiled, const Inventory& inventory) {
    std::vector<std::string> differences;
    std::vector<bool> used(flows.size(), false);
    for (const MatrixRow& row : rows) {
        std::vector<std::size_t> matching;
        for (std::size_t f = 0; f < flows.size(); ++f) {
            const bool clusters_ok =
                !flows[f].same_cluster ||
                (row.from.kind == Peer::Kind::endpoint && row.to.kind == Peer::Kind::endpoint &&
                 inventory[row.from.endpoint].cluster == inventory[row.to.endpoint].cluster);
            if (clusters_ok && names_party(flows[f].from, row.from, inventory) &&
                names_party(flows[f].to, row.to, inventory) &&
                flow_port_matches(flows[f], row, inventory)) {
                matching.push_back(f);
                used[f] = true;
            }
        }
        const std::string what = row_text(row, inventory);
        if (matching.empty()) {
            if (row.decision.connects()) {
                differences.push_back(what + ": connects (" + rules_of(row.decision) +
                                      "), but the intended matrix does not list it");
            }
            continue;
        }
        if (!row.decision.connects()) {
            differences.push_back(what + ": intended (" + flows[matching.front()].field + ") but " +
                                  std::string(to_string(row.decision.verdict)) + ": " +
                                  rules_of(row.decision));
            continue;
        }
        for (const std::size_t f : matching) {
            const IntendedFlow& flow = flows[f];
            for (const auto& probe : flow.allow) {
                for (const Request& request : parse_probe(probe)) {
                    const Decision decision =
                        decide(compiled, row.from, row.to, row.port, row.protocol, request);
                    if (decision.verdict != Verdict::allowed) {
                        differences.push_back(what + " " + request.to_string() + ": must pass (" +
                                              flow.field + ") but " +
                                              std::string(to_string(decision.verdict)) + ": " +
                                              rules_of(decision));
                    }
                }
            }
            for (const auto& probe : flow.deny) {
                // An operation is refused when one of its requests is (a consumer that may not
                // fetch cannot consume, whatever metadata it may read).
                const bool l4_only = row.decision.verdict == Verdict::allowed;
                std::optional<Decision> passed;
                bool refused = false;
                for (const Request& request : parse_probe(probe)) {
                    Decision decision =
                        decide(compiled, row.from, row.to, row.port, row.protocol, request);
                    refused |= decision.verdict == Verdict::rejected;
                    if (!passed) {
                        passed = std::move(decision);
                    }
                }
                if (!refused && !(flow.l7_optional && l4_only)) {
                    differences.push_back(what + " " + probe + ": must be refused (" + flow.field +
                                          ") but " + std::string(to_string(passed->verdict)) +
                                          ": " + rules_of(*passed));
                }
            }
        }
    }
    for (std::size_t f = 0; f < flows.size(); ++f) {
        if (!used[f]) {
            differences.push_back(flows[f].field + " (" + list_text(flows[f].from) + " -> " +
                                  list_text(flows[f].to) + " " + flows[f].port +
                                  "): matches no pair of the matrix");
        }
    }
    return differences;
}

}  // namespace calcmesh::policy
