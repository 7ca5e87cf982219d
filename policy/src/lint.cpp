#include "calcmesh/policy/lint.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

namespace calcmesh::policy {

namespace {

std::string list_text(const std::vector<std::string>& items) {
    std::string text;
    for (const auto& item : items) {
        text += (text.empty() ? "" : ", ") + item;
    }
    return text;
}

std::string labels_text(const LabelSelector& selector) {
    std::vector<std::string> parts;
    for (const auto& [key, value] : selector.match_labels) {
        parts.push_back(key + "=" + value);
    }
    for (const auto& requirement : selector.match_expressions) {
        parts.push_back(
            requirement.key + " " + requirement.op +
            (requirement.values.empty() ? "" : " (" + list_text(requirement.values) + ")"));
    }
    return parts.empty() ? "{}" : list_text(parts);
}

/// Endpoints whose workload carries the selected labels on itself but not on its pods.
std::vector<std::string> label_on_workload_hint(const LabelSelector& selector,
                                                const Inventory& inventory,
                                                const std::string& cluster) {
    std::vector<std::string> sources;
    for (const Endpoint& endpoint : inventory) {
        if ((!cluster.empty() && endpoint.cluster != cluster) || endpoint.object_labels.empty()) {
            continue;
        }
        Labels labels = endpoint.object_labels;
        for (const auto& [key, value] : endpoint.identity_labels()) {
            labels.try_emplace(key, value);
        }
        if (selector.matches(labels) &&
            std::find(sources.begin(), sources.end(), endpoint.source) == sources.end()) {
            sources.push_back(endpoint.source);
        }
    }
    return sources;
}

std::string workload_hint(const std::vector<std::string>& sources) {
    if (sources.empty()) {
        return {};
    }
    return "; " + list_text(sources) + (sources.size() == 1 ? " carries" : " carry") +
           " these labels on the object's own metadata.labels only, but policies select pods by "
           "the pod template's labels (spec.template.metadata.labels)";
}

std::string ports_text(const std::vector<std::size_t>& endpoints, const Inventory& inventory) {
    std::set<std::string> ports;
    for (const std::size_t i : endpoints) {
        for (const EndpointPort& port : inventory[i].ports) {
            ports.insert((port.name.empty() ? "" : port.name + "=") + std::to_string(port.port) +
                         "/" + std::string(to_string(port.protocol)));
        }
    }
    return ports.empty() ? "none" : list_text({ports.begin(), ports.end()});
}

bool listens(const Endpoint& endpoint, const PortProtocol& port) {
    for (const EndpointPort& candidate : endpoint.ports) {
        const bool protocol = port.protocol == Protocol::any || candidate.protocol == port.protocol;
        const bool number =
            candidate.name == port.port || std::to_string(candidate.port) == port.port ||
            (port.end_port != 0 &&
             std::isdigit(static_cast<unsigned char>(port.port.front())) != 0 &&
             candidate.port >= std::stoi(port.port) && candidate.port <= port.end_port);
        if (protocol && number) {
            return true;
        }
    }
    return false;
}

bool peers_overlap(const Peer& a, const Peer& b) {
    return a.kind == Peer::Kind::any || b.kind == Peer::Kind::any || a == b;
}

bool ports_overlap(const Entry& a, const Entry& b) {
    const auto range = [](const Entry& entry) {
        return entry.port == 0
                   ? std::pair{0, 65535}
                   : std::pair{entry.port, entry.end_port != 0 ? entry.end_port : entry.port};
    };
    const auto [a_low, a_high] = range(a);
    const auto [b_low, b_high] = range(b);
    const bool protocols =
        a.protocol == Protocol::any || b.protocol == Protocol::any || a.protocol == b.protocol;
    return protocols && a_low <= b_high && b_low <= a_high;
}

std::string port_text(const Entry& entry) {
    return entry.port == 0 ? "every port"
                           : std::to_string(entry.port) +
                                 (entry.end_port != 0 ? "-" + std::to_string(entry.end_port) : "") +
                                 "/" + std::string(to_string(entry.protocol));
}

/// Key of one written rule across the clusters a policy is applied to.
std::string rule_key(const Policy& policy, const std::string& field) {
    return policy.id.kind + " " + policy.id.namespace_ + "/" + policy.id.name + " " + field;
}

}  // namespace

std::vector<Finding> lint(const PolicySet& set, const Inventory& inventory,
                          const Options& options) {
    std::vector<Finding> findings;
    // Port checks look at every cluster the same policy is applied to: a cluster-wide baseline
    // names a port that only some clusters' pods have.
    struct PortCheck {
        std::string where;
        std::string message_prefix;
        PortProtocol port;
        bool satisfied = false;
        std::vector<std::size_t> candidates;
    };
    std::map<std::string, PortCheck> port_checks;
    std::vector<std::string> port_order;
    const auto check_port = [&](const Policy& policy, const PortProtocol& port,
                                const std::vector<std::size_t>& candidates,
                                const std::string& whose) {
        if (port.port.empty() || port.port == "0") {
            return;
        }
        const std::string key = rule_key(policy, port.field);
        auto [it, added] = port_checks.try_emplace(key);
        if (added) {
            it->second.where = policy.id.at(port.field + ".port");
            it->second.message_prefix = whose;
            it->second.port = port;
            port_order.push_back(key);
        }
        for (const std::size_t i : candidates) {
            it->second.candidates.push_back(i);
            it->second.satisfied |= listens(inventory[i], port);
        }
    };

    for (const Policy& policy : set.policies) {
        for (const Spec& spec : policy.specs) {
            const auto subjects = select_subjects(policy, spec, inventory);
            if (subjects.empty()) {
                LabelSelector selector = spec.endpoint_selector;
                if (!policy.clusterwide()) {
                    selector.match_labels[std::string(kNamespaceLabel)] = policy.id.namespace_;
                }
                findings.push_back(
                    {policy.id.at(spec.field + ".endpointSelector"),
                     "selects no pod in " + policy.cluster + " (" + labels_text(selector) + ")" +
                         workload_hint(
                             label_on_workload_hint(selector, inventory, policy.cluster))});
                continue;
            }
            for (const PeerRule& rule : spec.rules) {
                std::vector<std::size_t> peer_endpoints;
                for (std::size_t j = 0; j < rule.endpoints.size(); ++j) {
                    const LabelSelector selector =
                        effective_peer_selector(policy, rule.endpoints[j], options);
                    std::vector<std::size_t> matched;
                    for (std::size_t i = 0; i < inventory.size(); ++i) {
                        if (selector.matches(inventory[i].identity_labels())) {
                            matched.push_back(i);
                        }
                    }
                    peer_endpoints.insert(peer_endpoints.end(), matched.begin(), matched.end());
                    if (!matched.empty()) {
                        continue;
                    }
                    std::string hint;
                    if (options.default_local_cluster &&
                        !constrains(rule.endpoints[j], kClusterLabel)) {
                        const LabelSelector anywhere =
                            effective_peer_selector(policy, rule.endpoints[j], {false});
                        std::vector<std::string> elsewhere;
                        for (const Endpoint& endpoint : inventory) {
                            if (anywhere.matches(endpoint.identity_labels())) {
                                elsewhere.push_back(endpoint.to_string());
                            }
                        }
                        if (!elsewhere.empty()) {
                            hint = "; it would match " + list_text(elsewhere) +
                                   ", but a selector without " + std::string(kClusterLabel) +
                                   " means the policy's own cluster " + policy.cluster +
                                   " (Cilium 1.19 policyDefaultLocalCluster): name the cluster";
                        }
                    }
                    if (hint.empty()) {
                        hint = workload_hint(label_on_workload_hint(selector, inventory, ""));
                    }
                    findings.push_back(
                        {policy.id.at(rule.endpoint_fields[j]),
                         "matches no pod of any cluster (" + labels_text(selector) + ")" + hint});
                }
                const bool ingress = rule.direction == Direction::ingress;
                if (!ingress && rule.endpoints.empty()) {
                    continue;  // entities or any peer: nothing to check the port against
                }
                for (const PortRule& port_rule : rule.to_ports) {
                    for (const PortProtocol& port : port_rule.ports) {
                        check_port(policy, port, ingress ? subjects : peer_endpoints,
                                   ingress
                                       ? "no pod this policy selects listens on "
                                       : "no pod that this rule's toEndpoints select listens on ");
                    }
                }
            }
        }
    }
    for (const auto& key : port_order) {
        const PortCheck& check = port_checks[key];
        if (!check.satisfied && !check.candidates.empty()) {
            findings.push_back({check.where, check.message_prefix + check.port.port + "/" +
                                                 std::string(to_string(check.port.protocol)) +
                                                 " (their ports: " +
                                                 ports_text(check.candidates, inventory) + ")"});
        }
    }

    // L7 rules against the other allows of the same pod, direction, peer and port: one finding
    // per pair of rules, naming the first peer it concerns.
    const CompiledPolicy compiled = compile(set, inventory, options);
    struct Clash {
        std::string where;
        std::string message;  ///< what follows the first peer
        std::string first_peer;
        std::size_t peers = 0;
    };
    std::map<std::string, Clash> clashes;
    std::vector<std::string> clash_order;
    for (std::size_t e = 0; e < inventory.size(); ++e) {
        for (const Direction direction : {Direction::ingress, Direction::egress}) {
            const auto& entries = compiled.endpoints[e][direction].entries;
            for (const Entry& a : entries) {
                if (a.deny || !a.l7) {
                    continue;
                }
                for (const Entry& b : entries) {
                    if (&a == &b || b.deny || !peers_overlap(a.peer, b.peer) ||
                        !ports_overlap(a, b) || (b.l7 && a.l7->kind() == b.l7->kind())) {
                        continue;
                    }
                    const std::string key = a.rule.to_string() + "|" + b.rule.to_string();
                    auto [it, added] = clashes.try_emplace(key);
                    Clash& clash = it->second;
                    if (added) {
                        clash_order.push_back(key);
                        clash.where = a.rule.to_string();
                        clash.first_peer = a.peer.to_string(inventory) + " on " + port_text(a);
                        clash.message = !b.l7
                                            ? ": " + b.rule.to_string() +
                                                  " allows that peer and port without L7 rules"
                                            : ": Cilium rejects " + std::string(a.l7->kind()) +
                                                  " and " + std::string(b.l7->kind()) + " rules (" +
                                                  b.rule.to_string() + ") on one port";
                    }
                    ++clash.peers;
                }
            }
        }
    }
    for (const auto& key : clash_order) {
        const Clash& clash = clashes[key];
        const bool shadowed = clash.message.ends_with("without L7 rules");
        const std::string more =
            clash.peers > 1 ? " (and " + std::to_string(clash.peers - 1) + " more)" : "";
        findings.push_back({clash.where, std::string(shadowed ? "its L7 rules have no effect for "
                                                              : "L7 rules of two kinds for ") +
                                             clash.first_peer + more + clash.message});
    }
    return findings;
}

}  // namespace calcmesh::policy
