#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "calcmesh/kube/deploy_check.hpp"
#include "calcmesh/kube/model.hpp"

/// CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy (cilium.io/v2) as written, read
/// strictly: every field Cilium 1.19 defines for the rules calcmesh uses, with unknown fields,
/// wrong types, invalid regular expressions and invalid L7 rules reported, each naming the file,
/// the policy and the field.
namespace calcmesh::policy {

using kube::Finding;
using kube::Labels;
using kube::LabelSelector;
using kube::ObjectId;

/// The identity labels Cilium gives every pod, besides the pod's own.
inline constexpr std::string_view kClusterLabel = "io.cilium.k8s.policy.cluster";
inline constexpr std::string_view kNamespaceLabel = "io.kubernetes.pod.namespace";

enum class Direction { ingress, egress };
std::string_view to_string(Direction direction);

/// The peers Cilium names by entity instead of labels (fromEntities, toEntities).
enum class Entity {
    host,         ///< the node the endpoint runs on (the kubelet's probes come from here)
    remote_node,  ///< any other node of any connected cluster
    world,        ///< anything outside the clusters
    cluster,      ///< the local cluster's endpoints, nodes and reserved identities
    all,          ///< everything
    kube_apiserver,
    health,
    init,
    unmanaged,
    ingress,  ///< Cilium's own ingress/gateway proxy
};
std::string_view to_string(Entity entity);
std::optional<Entity> parse_entity(std::string_view text);

/// A transport protocol of toPorts; `any` matches every one.
enum class Protocol { any, tcp, udp, sctp };
std::string_view to_string(Protocol protocol);
std::optional<Protocol> parse_protocol(std::string_view text);

/// One toPorts[].ports[] entry.
struct PortProtocol {
    std::string port;  ///< a number or a container port name; empty: every port
    int end_port = 0;  ///< last port of a range, 0 if none
    Protocol protocol = Protocol::any;
    bool protocol_given = false;  ///< false when the field is omitted (Cilium then means ANY)
    std::string field;            ///< e.g. "spec.ingress[0].toPorts[0].ports[1]"
};

/// rules.http[]: every field is a POSIX extended regular expression that must match the whole
/// value (the path is the request's whole :path, query string included).
struct HttpRule {
    std::string method;
    std::string path;
    std::string host;
    std::vector<std::string> headers;  ///< "Name: value", which must be present
    std::string field;

    /// "GET /compute([?].*)?", for messages and tables.
    std::string to_string() const;
};

/// rules.kafka[] (Cilium <= 1.19): `role` or `apiKey`, never both.
struct KafkaRule {
    std::string role;  ///< produce or consume
    std::string api_key;
    std::string api_version;
    std::string client_id;
    std::string topic;
    std::string field;

    std::string to_string() const;
};

/// rules.dns[].
struct DnsRule {
    std::string match_name;
    std::string match_pattern;
    std::string field;

    std::string to_string() const;
};

/// toPorts[].rules: a union, only one kind may be set.
struct L7Rules {
    std::vector<HttpRule> http;
    std::vector<KafkaRule> kafka;
    std::vector<DnsRule> dns;
    std::string field;

    /// "http", "kafka", "dns", or "" when empty.
    std::string_view kind() const;
};

/// One toPorts[] entry.
struct PortRule {
    std::vector<PortProtocol> ports;
    std::optional<L7Rules> rules;  ///< none: no L7 restriction
    std::string field;
};

/// One item of ingress, ingressDeny, egress or egressDeny.
struct PeerRule {
    Direction direction = Direction::ingress;
    bool deny = false;
    std::vector<LabelSelector> endpoints;  ///< from/toEndpoints; keys without "k8s:"/"any:"
    std::vector<std::string> endpoint_fields;
    std::vector<Entity> entities;  ///< from/toEntities
    std::vector<PortRule> to_ports;
    std::string field;  ///< e.g. "spec.ingress[2]"

    /// A rule with no peer field and no port: Cilium's "- {}", which selects nothing (and
    /// only turns default deny on).
    bool empty() const { return endpoints.empty() && entities.empty() && to_ports.empty(); }
};

/// One rule of a policy: `spec`, or an item of `specs`.
struct Spec {
    LabelSelector endpoint_selector;  ///< keys without "k8s:"/"any:"
    std::vector<PeerRule> rules;      ///< in file order: ingress, ingressDeny, egress, egressDeny
    /// Whether the spec turns default deny on in a direction: it has rules there (enableDefaultDeny
    /// unset) or enableDefaultDeny says so.
    bool default_deny_ingress = false;
    bool default_deny_egress = false;
    std::string field;  ///< "spec" or "specs[1]"

    bool default_deny(Direction direction) const {
        return direction == Direction::ingress ? default_deny_ingress : default_deny_egress;
    }
};

/// One CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy, as applied to one cluster.
struct Policy {
    ObjectId id;          ///< file, kind, namespace (empty when cluster-wide) and name
    std::string cluster;  ///< the cluster it is applied to
    std::vector<Spec> specs;

    bool clusterwide() const { return id.kind == "CiliumClusterwideNetworkPolicy"; }
};

/// The policies of every cluster, in the order they are applied.
struct PolicySet {
    std::vector<Policy> policies;
};

/// A policy file as load_policies read it.
struct PolicyFile {
    std::filesystem::path path;
    std::string file;     ///< as messages name it, e.g. "policies/c1-client.yaml"
    std::string cluster;  ///< the cluster it is applied to
};

/// Policies read from files, and what is wrong with them. A policy with any finding is left out
/// of the set, so that the engine never works on half of one.
struct LoadedPolicies {
    PolicySet set;
    std::vector<Finding> findings;
    /// "kafka-l7/c2-kafka.yaml replaces CiliumNetworkPolicy calcmesh/kafka-clients of
    /// policies/c2-kafka.yaml", for each policy a later file replaced.
    std::vector<std::string> replaced;
    std::vector<PolicyFile> files;  ///< every file read, in the order applied
};

/// Reads the policy documents of one file applied to `cluster`. `file` names it in messages.
/// Documents of other kinds are findings too: a policy file holds policies only.
LoadedPolicies parse_policies(const std::string& file, const std::string& cluster,
                              const std::string& yaml);

/// Reads policy files and folders (every *.yaml in them, sorted) in order. A file applies to the
/// cluster its name says (c1-client.yaml: c1-client). A policy of a later file replaces the
/// policy of the same kind, namespace, name and cluster of an earlier one, as `kubectl apply`
/// does; twice in one file is a finding. `clusters` are the clusters that exist: a file named
/// after another is a finding.
LoadedPolicies load_policies(const std::vector<std::filesystem::path>& paths,
                             const std::vector<std::string>& clusters);

}  // namespace calcmesh::policy
