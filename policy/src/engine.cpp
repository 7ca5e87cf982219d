#include "calcmesh/policy/engine.hpp"

#include <algorithm>
#include <cctype>
#include <optional>
#include <regex>

#include "calcmesh/policy/kafka_api.hpp"

namespace calcmesh::policy {

namespace {

/// The peers a cluster entity stands for besides the local cluster's endpoints.
constexpr Entity kClusterEntities[] = {Entity::host,   Entity::remote_node, Entity::kube_apiserver,
                                       Entity::health, Entity::init,        Entity::unmanaged,
                                       Entity::ingress};

std::string policy_name(const Policy& policy) {
    std::string text = policy.id.kind + " ";
    if (!policy.id.namespace_.empty()) {
        text += policy.id.namespace_ + "/";
    }
    return text + policy.id.name;
}

RuleRef ref(const Policy& policy, std::string field) {
    return {policy.id.file, policy_name(policy), std::move(field)};
}

void add_unique(std::vector<Peer>& peers, const Peer& peer) {
    if (std::find(peers.begin(), peers.end(), peer) == peers.end()) {
        peers.push_back(peer);
    }
}

std::vector<Peer> expand_peers(const Policy& policy, const PeerRule& rule,
                               const Inventory& inventory, const Options& options) {
    std::vector<Peer> peers;
    for (const LabelSelector& written : rule.endpoints) {
        const LabelSelector selector = effective_peer_selector(policy, written, options);
        for (std::size_t i = 0; i < inventory.size(); ++i) {
            if (selector.matches(inventory[i].identity_labels())) {
                add_unique(peers, Peer::of(i));
            }
        }
    }
    for (const Entity entity : rule.entities) {
        if (entity == Entity::all) {
            return {Peer::any()};
        }
        if (entity != Entity::cluster) {
            add_unique(peers, Peer::of(entity));
            continue;
        }
        for (const Entity member : kClusterEntities) {
            add_unique(peers, Peer::of(member));
        }
        for (std::size_t i = 0; i < inventory.size(); ++i) {
            if (inventory[i].cluster == policy.cluster) {
                add_unique(peers, Peer::of(i));
            }
        }
    }
    if (rule.endpoints.empty() && rule.entities.empty() && !rule.to_ports.empty()) {
        return {Peer::any()};  // an L4-only rule: any peer on those ports
    }
    return peers;
}

bool protocols_meet(Protocol a, Protocol b) {
    return a == Protocol::any || b == Protocol::any || a == b;
}

/// The number a toPorts port means for one endpoint: a number as written, a name resolved on
/// that endpoint (for ingress the subject, for egress the peer). None if it has no such port.
std::optional<int> resolve_port(const PortProtocol& port, const Endpoint* owner) {
    if (port.port.empty()) {
        return 0;
    }
    if (std::isdigit(static_cast<unsigned char>(port.port.front())) != 0) {
        return std::stoi(port.port);
    }
    if (owner == nullptr) {
        return std::nullopt;
    }
    for (const EndpointPort& candidate : owner->ports) {
        if (candidate.name == port.port && protocols_meet(candidate.protocol, port.protocol)) {
            return candidate.port;
        }
    }
    return std::nullopt;
}

void add_entries(DirectionPolicy& target, const Policy& policy, const PeerRule& rule,
                 std::size_t subject, const std::vector<Peer>& peers, const Inventory& inventory) {
    if (rule.to_ports.empty()) {
        for (const Peer& peer : peers) {
            target.entries.push_back(
                {peer, 0, 0, Protocol::any, rule.deny, std::nullopt, ref(policy, rule.field)});
        }
        return;
    }
    for (const PortRule& port_rule : rule.to_ports) {
        std::optional<L7Rules> l7;
        if (port_rule.rules && !port_rule.rules->kind().empty()) {
            l7 = port_rule.rules;
        }
        std::vector<PortProtocol> ports = port_rule.ports;
        if (ports.empty()) {
            ports.push_back({});
        }
        for (const PortProtocol& port : ports) {
            for (const Peer& peer : peers) {
                const Endpoint* owner = rule.direction == Direction::ingress ? &inventory[subject]
                                        : peer.kind == Peer::Kind::endpoint
                                            ? &inventory[peer.endpoint]
                                            : nullptr;
                const auto number = resolve_port(port, owner);
                if (!number) {
                    continue;
                }
                target.entries.push_back({peer, *number, port.end_port, port.protocol, rule.deny,
                                          l7, ref(policy, port_rule.field)});
            }
        }
    }
}

bool peer_matches(const Peer& entry, const Peer& peer) {
    return entry.kind == Peer::Kind::any || entry == peer;
}

bool http_matches(const HttpRule& rule, const Request& request) {
    const auto whole = [](const std::string& pattern, const std::string& value) {
        return pattern.empty() ||
               std::regex_match(value, std::regex(pattern, std::regex::extended));
    };
    // A Request states no host and no headers: a rule that constrains them never matches.
    return rule.headers.empty() && rule.host.empty() && whole(rule.method, request.method) &&
           whole(rule.path, request.path);
}

bool kafka_matches(const KafkaRule& rule, const Request& request) {
    // As cilium/proxy proxylib/kafka Rule.Matches: the API key (a role stands for its keys),
    // then the topic for the requests that carry topics. The version and client id of a request
    // are not known here: a rule that constrains them never matches.
    if (!rule.api_version.empty() || !rule.client_id.empty()) {
        return false;
    }
    if (!rule.role.empty()) {
        const auto& keys = kafka_role_keys(rule.role);
        if (std::find(keys.begin(), keys.end(), request.api_key) == keys.end()) {
            return false;
        }
    } else if (!rule.api_key.empty()) {
        std::string key = rule.api_key;  // case-insensitive, as Cilium reads it
        std::transform(key.begin(), key.end(), key.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (key != request.api_key) {
            return false;
        }
    }
    if (rule.topic.empty() || !kafka_key_has_topics(request.api_key)) {
        return true;
    }
    // The proxy looks for the rule's topic among the topics it read from the request, and it
    // reads them for a few keys only: for the other keys that name topics it has none.
    return kafka_key_topics_read(request.api_key) && rule.topic == request.topic;
}

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
    std::string text;
    for (const auto& part : parts) {
        text += (text.empty() ? "" : std::string(separator)) + part;
    }
    return text;
}

std::string refs_text(const std::vector<RuleRef>& rules) {
    std::vector<std::string> parts;
    parts.reserve(rules.size());
    for (const RuleRef& rule : rules) {
        parts.push_back(rule.to_string());
    }
    return join(parts, "; ");
}

SideDecision decide_side(const CompiledPolicy& compiled, std::size_t endpoint, Direction direction,
                         const Peer& peer, int port, Protocol protocol, const Request& request) {
    const DirectionPolicy& policy = compiled.endpoints[endpoint][direction];
    SideDecision side{direction, endpoint, Verdict::allowed, {}, {}, {}};
    std::vector<const Entry*> allows;
    for (const Entry& entry : policy.entries) {
        if (!peer_matches(entry.peer, peer) || !entry.covers(port, protocol)) {
            continue;
        }
        if (entry.deny) {
            side.verdict = Verdict::dropped;
            side.rules.push_back(entry.rule);
        } else {
            allows.push_back(&entry);
        }
    }
    if (side.verdict == Verdict::dropped) {
        side.reason = "deny rule " + refs_text(side.rules);
        return side;
    }
    if (allows.empty()) {
        if (!policy.default_deny) {
            side.reason =
                std::string("no policy selects it for ") + std::string(to_string(direction));
            return side;
        }
        side.verdict = Verdict::dropped;
        side.rules = policy.selected_by;
        side.reason = "no rule allows it; default deny from " + refs_text(policy.selected_by);
        return side;
    }
    for (const Entry* entry : allows) {
        side.rules.push_back(entry->rule);
    }
    const auto l4_only =
        std::find_if(allows.begin(), allows.end(), [](const Entry* entry) { return !entry->l7; });
    if (l4_only != allows.end()) {
        side.rules = {(*l4_only)->rule};
        side.reason = "rule " + (*l4_only)->rule.to_string();
        return side;
    }
    for (const Entry* entry : allows) {
        for (const auto& rule : entry->l7->http) {
            side.l7_allowed.push_back("http " + rule.to_string());
        }
        for (const auto& rule : entry->l7->kafka) {
            side.l7_allowed.push_back("kafka " + rule.to_string());
        }
        for (const auto& rule : entry->l7->dns) {
            side.l7_allowed.push_back("dns " + rule.to_string());
        }
    }
    if (request.kind == Request::Kind::none) {
        side.verdict = Verdict::restricted;
        side.reason = "L7 rules of " + refs_text(side.rules) + " decide each request";
        return side;
    }
    for (const Entry* entry : allows) {
        const auto& l7 = *entry->l7;
        const auto allow = [&](const std::string& field) {
            side.rules = {RuleRef{entry->rule.file, entry->rule.policy, field}};
            side.reason = "rule " + side.rules.front().to_string();
        };
        if (request.kind == Request::Kind::http) {
            for (const HttpRule& rule : l7.http) {
                if (http_matches(rule, request)) {
                    allow(rule.field);
                    return side;
                }
            }
        } else {
            for (const KafkaRule& rule : l7.kafka) {
                if (kafka_matches(rule, request)) {
                    allow(rule.field);
                    return side;
                }
            }
        }
    }
    side.verdict = Verdict::rejected;
    side.reason =
        std::string(request.kind == Request::Kind::http ? "HTTP 403 Access denied"
                    : kafka_refusal_answered(request.api_key)
                        ? "Kafka TOPIC_AUTHORIZATION_FAILED"
                        : "Kafka request dropped without an answer (the proxy does not decode " +
                              request.api_key + " requests)") +
        ": no L7 rule of " + refs_text(side.rules) + " matches " + request.to_string();
    return side;
}

}  // namespace

Labels Endpoint::identity_labels() const {
    Labels identity = labels;
    identity[std::string(kNamespaceLabel)] = namespace_;
    identity[std::string(kClusterLabel)] = cluster;
    return identity;
}

std::string Endpoint::to_string() const {
    return cluster + "/" + name;
}

const EndpointPort* Endpoint::find_port(std::string_view name_or_number) const {
    for (const EndpointPort& port : ports) {
        if (port.name == name_or_number || std::to_string(port.port) == name_or_number) {
            return &port;
        }
    }
    return nullptr;
}

std::string RuleRef::to_string() const {
    return file + ": " + policy + ": " + field;
}

std::string Peer::to_string(const Inventory& inventory) const {
    switch (kind) {
        case Kind::endpoint:
            return inventory[endpoint].to_string();
        case Kind::entity:
            return std::string(policy::to_string(entity));
        case Kind::any:
            break;
    }
    return "any peer";
}

bool Entry::covers(int number, Protocol wanted) const {
    if (!protocols_meet(protocol, wanted)) {
        return false;
    }
    return port == 0 || number == port || (end_port != 0 && number >= port && number <= end_port);
}

bool constrains(const LabelSelector& selector, std::string_view key) {
    if (selector.match_labels.contains(std::string(key))) {
        return true;
    }
    return std::any_of(
        selector.match_expressions.begin(), selector.match_expressions.end(),
        [&](const kube::SelectorRequirement& requirement) { return requirement.key == key; });
}

LabelSelector effective_peer_selector(const Policy& policy, const LabelSelector& selector,
                                      const Options& options) {
    LabelSelector effective = selector;
    if (!policy.clusterwide() && !constrains(selector, kNamespaceLabel)) {
        effective.match_labels[std::string(kNamespaceLabel)] = policy.id.namespace_;
    }
    if (options.default_local_cluster && !constrains(selector, kClusterLabel)) {
        effective.match_labels[std::string(kClusterLabel)] = policy.cluster;
    }
    return effective;
}

std::vector<std::size_t> select_subjects(const Policy& policy, const Spec& spec,
                                         const Inventory& inventory) {
    LabelSelector selector = spec.endpoint_selector;
    if (!policy.clusterwide()) {
        // Cilium sets the namespace of a namespaced policy's endpointSelector, whatever it says.
        selector.match_labels[std::string(kNamespaceLabel)] = policy.id.namespace_;
    }
    std::vector<std::size_t> subjects;
    for (std::size_t i = 0; i < inventory.size(); ++i) {
        if (inventory[i].cluster == policy.cluster &&
            selector.matches(inventory[i].identity_labels())) {
            subjects.push_back(i);
        }
    }
    return subjects;
}

CompiledPolicy compile(const PolicySet& set, const Inventory& inventory, const Options& options) {
    CompiledPolicy compiled;
    compiled.endpoints.resize(inventory.size());
    for (const Policy& policy : set.policies) {
        for (const Spec& spec : policy.specs) {
            const auto subjects = select_subjects(policy, spec, inventory);
            if (subjects.empty()) {
                continue;
            }
            std::vector<std::vector<Peer>> peers;
            peers.reserve(spec.rules.size());
            for (const PeerRule& rule : spec.rules) {
                peers.push_back(expand_peers(policy, rule, inventory, options));
            }
            for (const std::size_t subject : subjects) {
                EndpointPolicy& target = compiled.endpoints[subject];
                for (const Direction direction : {Direction::ingress, Direction::egress}) {
                    if (spec.default_deny(direction)) {
                        target[direction].default_deny = true;
                        target[direction].selected_by.push_back(ref(policy, spec.field));
                    }
                }
                for (std::size_t r = 0; r < spec.rules.size(); ++r) {
                    const PeerRule& rule = spec.rules[r];
                    add_entries(target[rule.direction], policy, rule, subject, peers[r], inventory);
                }
            }
        }
    }
    return compiled;
}

std::vector<MapEntry> map_entries(const DirectionPolicy& policy) {
    std::vector<MapEntry> merged;
    for (const Entry& entry : policy.entries) {
        auto it = std::find_if(merged.begin(), merged.end(), [&](const MapEntry& existing) {
            return existing.peer == entry.peer && existing.port == entry.port &&
                   existing.end_port == entry.end_port && existing.protocol == entry.protocol;
        });
        if (it == merged.end()) {
            merged.push_back(
                {entry.peer, entry.port, entry.end_port, entry.protocol, false, true, {}});
            it = std::prev(merged.end());
        }
        if (entry.deny) {
            it->deny = true;
        } else if (!entry.l7) {
            it->l7 = false;
        }
        it->rules.push_back(entry.rule);
    }
    for (MapEntry& entry : merged) {
        if (entry.deny) {
            entry.l7 = false;
        }
    }
    return merged;
}

std::string Request::to_string() const {
    switch (kind) {
        case Kind::http:
            return method + " " + path;
        case Kind::kafka:
            return "kafka " + api_key + (topic.empty() ? "" : " " + topic);
        case Kind::none:
            break;
    }
    return {};
}

std::vector<Request> kafka_operation(std::string_view operation, const std::string& topic) {
    static const std::vector<std::string> kProduce = {"produce", "metadata"};
    static const std::vector<std::string> kConsume = {"fetch", "offsets", "metadata",
                                                      "offsetcommit", "offsetfetch"};
    std::vector<std::string> keys;
    if (operation == "produce") {
        keys = kProduce;
    } else if (operation == "consume") {
        keys = kConsume;
    } else {
        const auto& known = kafka_api_keys();
        if (std::none_of(known.begin(), known.end(),
                         [&](const auto& key) { return key.first == operation; })) {
            return {};
        }
        keys = {std::string(operation)};
    }
    std::vector<Request> requests;
    requests.reserve(keys.size());
    for (const auto& key : keys) {
        requests.push_back(Request::kafka(key, kafka_key_has_topics(key) ? topic : ""));
    }
    return requests;
}

std::string_view to_string(Verdict verdict) {
    switch (verdict) {
        case Verdict::allowed:
            return "allowed";
        case Verdict::restricted:
            return "allowed (L7)";
        case Verdict::rejected:
            return "rejected (L7)";
        case Verdict::dropped:
            break;
    }
    return "dropped";
}

Decision decide(const CompiledPolicy& compiled, const Peer& from, const Peer& to, int port,
                Protocol protocol, const Request& request) {
    Decision decision;
    if (from.kind == Peer::Kind::endpoint) {
        decision.sides.push_back(
            decide_side(compiled, from.endpoint, Direction::egress, to, port, protocol, request));
    }
    if (to.kind == Peer::Kind::endpoint) {
        decision.sides.push_back(
            decide_side(compiled, to.endpoint, Direction::ingress, from, port, protocol, request));
    }
    for (const Verdict verdict : {Verdict::dropped, Verdict::rejected, Verdict::restricted}) {
        if (std::any_of(decision.sides.begin(), decision.sides.end(),
                        [&](const SideDecision& side) { return side.verdict == verdict; })) {
            decision.verdict = verdict;
            break;
        }
    }
    return decision;
}

}  // namespace calcmesh::policy
