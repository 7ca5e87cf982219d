#include "calcmesh/policy/policy.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "calcmesh/kube/yaml.hpp"
#include "calcmesh/policy/kafka_api.hpp"

namespace calcmesh::policy {

namespace {

using Keys = std::set<std::string, std::less<>>;
using kube::describe;
using kube::join_field;
using kube::YamlField;

std::string lower(std::string_view text) {
    std::string result(text);
    std::transform(result.begin(), result.end(), result.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return result;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) {
        row[j] = j;
    }
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
            diagonal = above;
        }
    }
    return row[b.size()];
}

/// Whether a field is there: yaml-cpp's nodes for missing keys throw on every other question.
bool present(const YAML::Node& node) {
    return node.IsDefined() && !node.IsNull();
}

std::string scalar(const YAML::Node& node) {
    return present(node) && node.IsScalar() ? node.Scalar() : std::string();
}

bool is_port_name(std::string_view text) {
    // IANA_SVC_NAME, as Kubernetes container port names: 1-15 of [a-z0-9-], a letter, no "--",
    // no "-" at either end.
    if (text.empty() || text.size() > 15 || text.front() == '-' || text.back() == '-' ||
        text.find("--") != std::string_view::npos) {
        return false;
    }
    bool letter = false;
    for (const char c : text) {
        if (std::islower(static_cast<unsigned char>(c)) != 0) {
            letter = true;
        } else if (std::isdigit(static_cast<unsigned char>(c)) == 0 && c != '-') {
            return false;
        }
    }
    return letter;
}

std::optional<int> port_number(std::string_view text) {
    if (text.empty() || text.size() > 5 ||
        !std::all_of(text.begin(), text.end(),
                     [](unsigned char c) { return std::isdigit(c) != 0; })) {
        return std::nullopt;
    }
    const int value = std::stoi(std::string(text));
    return value <= 65535 ? std::optional<int>(value) : std::nullopt;
}

/// Strips the label source Cilium allows in selector keys ("k8s:app" and "any:app" both select
/// the Kubernetes label app). "reserved:" keys stay: no pod label matches them.
std::string selector_key(const std::string& key) {
    for (const std::string_view prefix : {"k8s:", "any:"}) {
        if (key.starts_with(prefix)) {
            return key.substr(prefix.size());
        }
    }
    return key;
}

/// Reads the fields of one policy document, recording every problem with its field.
class Reader {
  public:
    Reader(const ObjectId& id, std::vector<Finding>& findings) : id_(id), findings_(findings) {}

    void error(const std::string& field, const std::string& message) {
        findings_.push_back({id_.at(field), message});
        ++errors_;
    }

    std::size_t errors() const { return errors_; }

    /// Whether `node` is a map, and every key is one of `known`. Keys Cilium defines that this
    /// checker does not evaluate are findings too: a rule nobody checked is not proved.
    bool map(const YAML::Node& node, const std::string& field, const Keys& known,
             const Keys& unsupported = {}) {
        if (!node.IsDefined() || !node.IsMap()) {
            error(field, "expected a map, got " + describe(node));
            return false;
        }
        for (const auto& entry : node) {
            const std::string key = entry.first.Scalar();
            if (known.contains(key)) {
                continue;
            }
            const std::string where = join_field(field, key);
            if (unsupported.contains(key)) {
                error(where,
                      "a Cilium field that calcmesh policy does not evaluate; write the "
                      "rule with the supported fields");
            } else if (key == "fromRequires" || key == "toRequires") {
                error(where, "removed in Cilium 1.19: use fromEndpoints/toEndpoints");
            } else {
                error(where, "unknown field" + suggestion(key, known));
            }
        }
        return true;
    }

    /// The field `key` of `parent`, whose problems become findings.
    YamlField at(const YAML::Node& parent, std::string_view key, const std::string& field) {
        return {parent[std::string(key)], join_field(field, key),
                [this](const std::string& where, const std::string& message) {
                    error(where, message);
                }};
    }

    /// A string field; plain numbers and booleans are not strings to the API server.
    std::string string(const YAML::Node& parent, std::string_view key, const std::string& field) {
        return at(parent, key, field).string();
    }

    std::optional<int> integer(const YAML::Node& parent, std::string_view key,
                               const std::string& field) {
        return at(parent, key, field).integer();
    }

    std::optional<bool> boolean(const YAML::Node& parent, std::string_view key,
                                const std::string& field) {
        return at(parent, key, field).boolean();
    }

    /// The items of a list field, each with its field path. Absent: none.
    std::vector<std::pair<YAML::Node, std::string>> list(const YAML::Node& parent,
                                                         std::string_view key,
                                                         const std::string& field) {
        std::vector<std::pair<YAML::Node, std::string>> items;
        for (const auto& item : at(parent, key, field).items()) {
            items.emplace_back(item.node(), item.path());
        }
        return items;
    }

    std::vector<std::string> strings(const YAML::Node& parent, std::string_view key,
                                     const std::string& field) {
        std::vector<std::string> values;
        for (const auto& item : at(parent, key, field).items()) {
            if (!item.present()) {
                error(item.path(), "expected a string, got " + describe(item.node()));
                continue;
            }
            const auto errors_before = errors_;
            auto value = item.string();
            if (errors_ == errors_before) {
                values.push_back(std::move(value));
            }
        }
        return values;
    }

  private:
    static std::string suggestion(const std::string& key, const Keys& known) {
        for (const auto& candidate : known) {
            if (lower(candidate) == lower(key) || edit_distance(candidate, key) <= 2) {
                return " (did you mean " + candidate + "?)";
            }
        }
        std::string list;
        for (const auto& candidate : known) {
            list += (list.empty() ? "" : ", ") + candidate;
        }
        return "; known: " + list;
    }

    const ObjectId& id_;
    std::vector<Finding>& findings_;
    std::size_t errors_ = 0;
};

/// Whether a regular expression compiles as POSIX extended, the syntax Cilium documents.
std::optional<std::string> regex_error(const std::string& pattern) {
    try {
        static_cast<void>(std::regex(pattern, std::regex::extended));  // throws if it does not
        return std::nullopt;
    } catch (const std::regex_error& error) {
        return std::string(error.what());
    }
}

LabelSelector read_selector(Reader& reader, const YAML::Node& node, const std::string& field) {
    LabelSelector selector;
    if (!reader.map(node, field, {"matchLabels", "matchExpressions"})) {
        return selector;
    }
    const YAML::Node labels = node["matchLabels"];
    if (labels.IsDefined() && !labels.IsNull()) {
        const std::string where = join_field(field, "matchLabels");
        if (!labels.IsMap()) {
            reader.error(where, "expected a map, got " + describe(labels));
        } else {
            for (const auto& entry : labels) {
                const std::string key = entry.first.Scalar();
                const std::string value = reader.string(labels, key, where);
                selector.match_labels[selector_key(key)] = value;
            }
        }
    }
    for (const auto& [item, where] : reader.list(node, "matchExpressions", field)) {
        if (!reader.map(item, where, {"key", "operator", "values"})) {
            continue;
        }
        kube::SelectorRequirement requirement{selector_key(reader.string(item, "key", where)),
                                              reader.string(item, "operator", where),
                                              reader.strings(item, "values", where)};
        if (requirement.key.empty()) {
            reader.error(join_field(where, "key"), "missing");
        }
        const bool with_values = requirement.op == "In" || requirement.op == "NotIn";
        if (!with_values && requirement.op != "Exists" && requirement.op != "DoesNotExist") {
            reader.error(join_field(where, "operator"),
                         "'" + requirement.op + "' is not In, NotIn, Exists or DoesNotExist");
        } else if (with_values && requirement.values.empty()) {
            reader.error(join_field(where, "values"), requirement.op + " needs values");
        } else if (!with_values && !requirement.values.empty()) {
            reader.error(join_field(where, "values"), requirement.op + " takes no values");
        }
        selector.match_expressions.push_back(std::move(requirement));
    }
    return selector;
}

void check_http(Reader& reader, const HttpRule& rule) {
    for (const auto& [name, value] :
         {std::pair{"method", &rule.method}, {"path", &rule.path}, {"host", &rule.host}}) {
        if (const auto error = regex_error(*value)) {
            reader.error(join_field(rule.field, name),
                         "'" + *value + "' is not a POSIX extended regular expression: " + *error);
        }
    }
    if (!rule.path.empty() && std::isalnum(static_cast<unsigned char>(rule.path.front())) != 0) {
        reader.error(join_field(rule.field, "path"),
                     "'" + rule.path +
                         "' never matches: the whole path must match, and a path "
                         "starts with /");
    }
}

void check_kafka(Reader& reader, const KafkaRule& rule) {
    if (!rule.role.empty() && !rule.api_key.empty()) {
        reader.error(rule.field,
                     "role and apiKey are exclusive: a role already names its API keys");
    }
    if (!rule.role.empty() && lower(rule.role) != "produce" && lower(rule.role) != "consume") {
        reader.error(join_field(rule.field, "role"),
                     "'" + rule.role + "' is not a Kafka role: produce or consume");
    }
    if (!rule.api_key.empty()) {
        const auto& keys = kafka_api_keys();
        if (std::none_of(keys.begin(), keys.end(),
                         [&](const auto& key) { return key.first == lower(rule.api_key); })) {
            reader.error(join_field(rule.field, "apiKey"),
                         "'" + rule.api_key +
                             "' is not a Kafka API key name (e.g. produce, "
                             "fetch, metadata, apiversions)");
        }
    }
    if (!rule.api_version.empty() && !port_number(rule.api_version)) {
        reader.error(join_field(rule.field, "apiVersion"),
                     "'" + rule.api_version + "' is not a number");
    }
    static const std::regex kTopic("[a-zA-Z0-9._-]{1,255}");
    if (!rule.topic.empty() && !std::regex_match(rule.topic, kTopic)) {
        reader.error(join_field(rule.field, "topic"),
                     "'" + rule.topic +
                         "' is not a Kafka topic name ([a-zA-Z0-9._-], at most "
                         "255)");
    }
}

std::optional<L7Rules> read_l7(Reader& reader, const YAML::Node& node, const std::string& field) {
    if (!reader.map(node, field, {"http", "kafka", "dns"}, {"l7proto", "l7"})) {
        return std::nullopt;
    }
    L7Rules rules;
    rules.field = field;
    for (const auto& [item, where] : reader.list(node, "http", field)) {
        if (!reader.map(item, where, {"method", "path", "host", "headers"}, {"headerMatches"})) {
            continue;
        }
        HttpRule rule{reader.string(item, "method", where), reader.string(item, "path", where),
                      reader.string(item, "host", where), reader.strings(item, "headers", where),
                      where};
        check_http(reader, rule);
        rules.http.push_back(std::move(rule));
    }
    for (const auto& [item, where] : reader.list(node, "kafka", field)) {
        if (!reader.map(item, where, {"role", "apiKey", "apiVersion", "clientID", "topic"})) {
            continue;
        }
        KafkaRule rule{
            reader.string(item, "role", where),       reader.string(item, "apiKey", where),
            reader.string(item, "apiVersion", where), reader.string(item, "clientID", where),
            reader.string(item, "topic", where),      where};
        check_kafka(reader, rule);
        rules.kafka.push_back(std::move(rule));
    }
    for (const auto& [item, where] : reader.list(node, "dns", field)) {
        if (!reader.map(item, where, {"matchName", "matchPattern"})) {
            continue;
        }
        DnsRule rule{reader.string(item, "matchName", where),
                     reader.string(item, "matchPattern", where), where};
        if (rule.match_name.empty() == rule.match_pattern.empty()) {
            reader.error(where, "needs exactly one of matchName and matchPattern");
        }
        rules.dns.push_back(std::move(rule));
    }
    const int kinds = !rules.http.empty() + !rules.kafka.empty() + !rules.dns.empty();
    if (kinds > 1) {
        reader.error(field,
                     "http, kafka and dns rules cannot be mixed on one port (Cilium "
                     "rejects the policy)");
    }
    return rules;
}

PortRule read_port_rule(Reader& reader, const YAML::Node& node, const std::string& field,
                        bool deny) {
    PortRule rule;
    rule.field = field;
    if (!reader.map(node, field, {"ports", "rules"},
                    {"terminatingTLS", "originatingTLS", "serverNames", "listener"})) {
        return rule;
    }
    for (const auto& [item, where] : reader.list(node, "ports", field)) {
        if (!reader.map(item, where, {"port", "endPort", "protocol"})) {
            continue;
        }
        PortProtocol port;
        port.field = where;
        // Kept as written even when it has the wrong type (reported), so that it is not taken
        // for "every port" below.
        reader.string(item, "port", where);
        port.port = scalar(item["port"]);
        port.end_port = reader.integer(item, "endPort", where).value_or(0);
        const std::string protocol = reader.string(item, "protocol", where);
        port.protocol_given = !protocol.empty();
        if (port.protocol_given) {
            if (const auto parsed = parse_protocol(protocol)) {
                port.protocol = *parsed;
            } else {
                reader.error(join_field(where, "protocol"),
                             "'" + protocol + "' is not TCP, UDP, SCTP or ANY");
            }
        }
        const auto number = port_number(port.port);
        if (!port.port.empty() && !number && !is_port_name(port.port)) {
            reader.error(join_field(where, "port"),
                         "'" + port.port + "' is neither a port number (0-65535) nor a port name");
        }
        if (port.end_port != 0 && (!number || port.end_port < *number || port.end_port > 65535)) {
            reader.error(join_field(where, "endPort"),
                         std::to_string(port.end_port) +
                             " does not end a range that starts at port '" + port.port + "'");
        }
        rule.ports.push_back(std::move(port));
    }
    const YAML::Node rules = node["rules"];
    if (rules.IsDefined() && !rules.IsNull()) {
        const std::string where = join_field(field, "rules");
        if (deny) {
            reader.error(where, "a deny rule cannot have L7 rules (Cilium rejects the policy)");
        }
        rule.rules = read_l7(reader, rules, where);
        if (rule.rules && !rule.rules->kind().empty()) {
            const bool dns = rule.rules->kind() == "dns";
            if (rule.ports.empty()) {
                reader.error(where, "L7 rules need a port in ports");
            }
            for (const PortProtocol& port : rule.ports) {
                if (port.port.empty() || port.port == "0") {
                    reader.error(join_field(port.field, "port"),
                                 "L7 rules need a port, not every port");
                }
                if (!port.protocol_given) {
                    reader.error(join_field(port.field, "protocol"),
                                 std::string("missing: L7 rules need the protocol (") +
                                     (dns ? "UDP, TCP or ANY" : "TCP") +
                                     "), and omitted means ANY");
                } else if (!dns && port.protocol != Protocol::tcp) {
                    reader.error(join_field(port.field, "protocol"),
                                 std::string(rule.rules->kind()) + " rules need TCP, not " +
                                     std::string(to_string(port.protocol)));
                }
            }
        }
    }
    return rule;
}

PeerRule read_peer_rule(Reader& reader, const YAML::Node& node, const std::string& field,
                        Direction direction, bool deny) {
    PeerRule rule;
    rule.direction = direction;
    rule.deny = deny;
    rule.field = field;
    const bool ingress = direction == Direction::ingress;
    const std::string endpoints_key = ingress ? "fromEndpoints" : "toEndpoints";
    const std::string entities_key = ingress ? "fromEntities" : "toEntities";
    Keys unsupported = ingress ? Keys{"fromCIDR", "fromCIDRSet", "fromGroups", "fromNodes", "icmps"}
                               : Keys{"toCIDR", "toCIDRSet", "toGroups",  "toNodes",
                                      "icmps",  "toFQDNs",   "toServices"};
    if (!deny) {
        unsupported.insert("authentication");
    }
    if (!reader.map(node, field, {endpoints_key, entities_key, "toPorts"}, unsupported)) {
        return rule;
    }
    for (const auto& [item, where] : reader.list(node, endpoints_key, field)) {
        rule.endpoints.push_back(read_selector(reader, item, where));
        rule.endpoint_fields.push_back(where);
    }
    for (const auto& [item, where] : reader.list(node, entities_key, field)) {
        const std::string name = scalar(item);
        if (const auto entity = parse_entity(name)) {
            rule.entities.push_back(*entity);
        } else {
            reader.error(where, "'" + (name.empty() ? describe(item) : name) +
                                    "' is not an entity (host, remote-node, world, cluster, all, "
                                    "kube-apiserver, health, init, unmanaged, ingress)");
        }
    }
    for (const auto& [item, where] : reader.list(node, "toPorts", field)) {
        rule.to_ports.push_back(read_port_rule(reader, item, where, deny));
    }
    return rule;
}

Spec read_spec(Reader& reader, const YAML::Node& node, const std::string& field) {
    Spec spec;
    spec.field = field;
    if (!reader.map(node, field,
                    {"endpointSelector", "ingress", "ingressDeny", "egress", "egressDeny",
                     "description", "labels", "enableDefaultDeny"},
                    {"nodeSelector", "log"})) {
        return spec;
    }
    const YAML::Node selector = node["endpointSelector"];
    if (!selector.IsDefined() || selector.IsNull()) {
        reader.error(join_field(field, "endpointSelector"), "missing");
    } else {
        spec.endpoint_selector =
            read_selector(reader, selector, join_field(field, "endpointSelector"));
    }
    reader.string(node, "description", field);
    for (const auto& [item, where] : reader.list(node, "labels", field)) {
        reader.map(item, where, {"key", "value", "source"});
    }
    bool has[2] = {false, false};
    for (const auto& [key, direction, deny] : {std::tuple{"ingress", Direction::ingress, false},
                                               {"ingressDeny", Direction::ingress, true},
                                               {"egress", Direction::egress, false},
                                               {"egressDeny", Direction::egress, true}}) {
        const auto items = reader.list(node, key, field);
        const YAML::Node list = node[key];
        if (list.IsDefined() && list.IsSequence() && list.size() == 0) {
            reader.error(join_field(field, key),
                         "an empty list neither allows anything nor turns default deny on; "
                         "write [{}] to deny everything, or leave it out");
        }
        has[direction == Direction::egress] |= !items.empty();
        for (const auto& [item, where] : items) {
            spec.rules.push_back(read_peer_rule(reader, item, where, direction, deny));
        }
    }
    spec.default_deny_ingress = has[0];
    spec.default_deny_egress = has[1];
    const YAML::Node default_deny = node["enableDefaultDeny"];
    if (default_deny.IsDefined() && !default_deny.IsNull()) {
        const std::string where = join_field(field, "enableDefaultDeny");
        if (reader.map(default_deny, where, {"ingress", "egress"})) {
            spec.default_deny_ingress =
                reader.boolean(default_deny, "ingress", where).value_or(has[0]);
            spec.default_deny_egress =
                reader.boolean(default_deny, "egress", where).value_or(has[1]);
        }
    }
    return spec;
}

std::string display_file(const std::filesystem::path& path) {
    const auto parent = path.parent_path().filename().string();
    return parent.empty() ? path.filename().string() : parent + "/" + path.filename().string();
}

}  // namespace

std::string_view to_string(Direction direction) {
    return direction == Direction::ingress ? "ingress" : "egress";
}

namespace {
const std::vector<std::pair<Entity, std::string_view>> kEntities = {
    {Entity::host, "host"},
    {Entity::remote_node, "remote-node"},
    {Entity::world, "world"},
    {Entity::cluster, "cluster"},
    {Entity::all, "all"},
    {Entity::kube_apiserver, "kube-apiserver"},
    {Entity::health, "health"},
    {Entity::init, "init"},
    {Entity::unmanaged, "unmanaged"},
    {Entity::ingress, "ingress"},
};
}  // namespace

std::string_view to_string(Entity entity) {
    for (const auto& [value, name] : kEntities) {
        if (value == entity) {
            return name;
        }
    }
    return "?";
}

std::optional<Entity> parse_entity(std::string_view text) {
    for (const auto& [value, name] : kEntities) {
        if (name == text) {
            return value;
        }
    }
    return std::nullopt;
}

std::string_view to_string(Protocol protocol) {
    switch (protocol) {
        case Protocol::tcp:
            return "TCP";
        case Protocol::udp:
            return "UDP";
        case Protocol::sctp:
            return "SCTP";
        case Protocol::any:
            break;
    }
    return "ANY";
}

std::optional<Protocol> parse_protocol(std::string_view text) {
    for (const Protocol protocol : {Protocol::tcp, Protocol::udp, Protocol::sctp, Protocol::any}) {
        if (to_string(protocol) == text) {
            return protocol;
        }
    }
    return std::nullopt;
}

std::string HttpRule::to_string() const {
    std::string text = (method.empty() ? "*" : method) + " " + (path.empty() ? "*" : path);
    if (!host.empty()) {
        text += " host " + host;
    }
    for (const auto& header : headers) {
        text += " [" + header + "]";
    }
    return text;
}

std::string KafkaRule::to_string() const {
    std::string text = !role.empty() ? role : !api_key.empty() ? api_key : "*";
    text += " " + (topic.empty() ? std::string("*") : topic);
    if (!api_version.empty()) {
        text += " v" + api_version;
    }
    if (!client_id.empty()) {
        text += " client " + client_id;
    }
    return text;
}

std::string DnsRule::to_string() const {
    return match_name.empty() ? "pattern " + match_pattern : "name " + match_name;
}

std::string_view L7Rules::kind() const {
    return !http.empty() ? "http" : !kafka.empty() ? "kafka" : !dns.empty() ? "dns" : "";
}

LoadedPolicies parse_policies(const std::string& file, const std::string& cluster,
                              const std::string& yaml) {
    LoadedPolicies loaded;
    auto parsed = kube::load_yaml_documents(yaml);
    if (!parsed) {
        loaded.findings.push_back({file, parsed.error().message});
        return loaded;
    }
    const std::vector<YAML::Node>& documents = parsed.value();
    std::set<std::string> seen;
    for (std::size_t index = 0; index < documents.size(); ++index) {
        const YAML::Node& document = documents[index];
        if (!document.IsDefined() || document.IsNull()) {
            continue;
        }
        ObjectId id{file, "", "", "document " + std::to_string(index + 1)};
        std::vector<Finding> findings;
        Reader reader(id, findings);
        if (!document.IsMap()) {
            reader.error("", "expected a policy object, got " + describe(document));
            loaded.findings.insert(loaded.findings.end(), findings.begin(), findings.end());
            continue;
        }
        id.kind = scalar(document["kind"]);
        const YAML::Node metadata = document["metadata"];
        if (present(metadata) && metadata.IsMap()) {
            id.name = scalar(metadata["name"]).empty() ? id.name : scalar(metadata["name"]);
            id.namespace_ = scalar(metadata["namespace"]);
        }
        reader.map(document, "", {"apiVersion", "kind", "metadata", "spec", "specs"});
        const bool clusterwide = id.kind == "CiliumClusterwideNetworkPolicy";
        if (id.kind != "CiliumNetworkPolicy" && !clusterwide) {
            reader.error(
                "kind",
                "'" + id.kind + "' is not CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy");
        }
        if (reader.string(document, "apiVersion", "") != "cilium.io/v2") {
            reader.error("apiVersion", "expected cilium.io/v2");
        }
        if (reader.map(metadata, "metadata", {"name", "namespace", "labels", "annotations"})) {
            if (reader.string(metadata, "name", "metadata").empty()) {
                reader.error("metadata.name", "missing");
            }
            reader.string(metadata, "namespace", "metadata");
            if (clusterwide && !id.namespace_.empty()) {
                reader.error("metadata.namespace",
                             "a CiliumClusterwideNetworkPolicy has no namespace");
            } else if (!clusterwide && id.namespace_.empty()) {
                reader.error("metadata.namespace",
                             "missing: the policy would land in whatever namespace kubectl "
                             "uses");
            }
        }
        Policy policy{id, cluster, {}};
        const YAML::Node spec = document["spec"];
        if (spec.IsDefined() && !spec.IsNull()) {
            policy.specs.push_back(read_spec(reader, spec, "spec"));
        }
        for (const auto& [item, where] : reader.list(document, "specs", "")) {
            policy.specs.push_back(read_spec(reader, item, where));
        }
        if (policy.specs.empty() && reader.errors() == 0) {
            reader.error("spec", "missing");
        }
        const std::string key = id.kind + " " + id.namespace_ + "/" + id.name;
        if (!seen.insert(key).second) {
            reader.error("metadata.name", "a second policy of that name in the same file");
        }
        loaded.findings.insert(loaded.findings.end(), findings.begin(), findings.end());
        if (reader.errors() == 0) {
            loaded.set.policies.push_back(std::move(policy));
        }
    }
    return loaded;
}

LoadedPolicies load_policies(const std::vector<std::filesystem::path>& paths,
                             const std::vector<std::string>& clusters) {
    LoadedPolicies loaded;
    std::vector<std::filesystem::path> files;
    for (const auto& path : paths) {
        if (std::filesystem::is_directory(path)) {
            std::vector<std::filesystem::path> entries;
            for (const auto& entry : std::filesystem::directory_iterator(path)) {
                if (entry.is_regular_file() && entry.path().extension() == ".yaml") {
                    entries.push_back(entry.path());
                }
            }
            if (entries.empty()) {
                loaded.findings.push_back({path.string(), "no *.yaml policy files"});
            }
            std::sort(entries.begin(), entries.end());
            files.insert(files.end(), entries.begin(), entries.end());
        } else {
            files.push_back(path);
        }
    }
    for (const auto& path : files) {
        const std::string file = display_file(path);
        const std::string cluster = path.stem().string();
        if (std::find(clusters.begin(), clusters.end(), cluster) == clusters.end()) {
            std::string known;
            for (const auto& name : clusters) {
                known += (known.empty() ? "" : ", ") + name;
            }
            loaded.findings.push_back(
                {file, "the file name says which cluster it is for, and there is no cluster '" +
                           cluster + "' (clusters: " + known + ")"});
            continue;
        }
        std::ifstream in(path);
        if (!in) {
            loaded.findings.push_back({path.string(), "cannot read"});
            continue;
        }
        std::ostringstream text;
        text << in.rdbuf();
        loaded.files.push_back({path, file, cluster});
        auto part = parse_policies(file, cluster, text.str());
        loaded.findings.insert(loaded.findings.end(), part.findings.begin(), part.findings.end());
        for (Policy& policy : part.set.policies) {
            auto& policies = loaded.set.policies;
            const auto same =
                std::find_if(policies.begin(), policies.end(), [&](const Policy& old) {
                    return old.cluster == policy.cluster && old.id.kind == policy.id.kind &&
                           old.id.namespace_ == policy.id.namespace_ &&
                           old.id.name == policy.id.name;
                });
            if (same != policies.end()) {
                loaded.replaced.push_back(file + " replaces " + same->id.to_string() + " in " +
                                          policy.cluster);
                *same = std::move(policy);
            } else {
                policies.push_back(std::move(policy));
            }
        }
    }
    return loaded;
}

}  // namespace calcmesh::policy
