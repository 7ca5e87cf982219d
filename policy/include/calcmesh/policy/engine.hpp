#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "calcmesh/policy/policy.hpp"

/// Cilium's policy semantics, evaluated offline on an inventory of endpoints.
///
/// Two consumers use this: `calcmesh policy` (check and matrix, on the endpoints of the rendered
/// manifests) and the lab, which compiles the same policy files into BPF maps for its own pods.
/// Neither needs Kubernetes here: an endpoint is its labels, namespace and cluster.
///
/// Typical use:
///
///     Inventory pods = {...};                               // one Endpoint per pod
///     auto loaded = load_policies({"build/.../policies"}, {"c1-client", ...});
///     if (!loaded.findings.empty()) { /* report them, stop */ }
///     CompiledPolicy compiled = compile(loaded.set, pods);
///     // BPF maps: for every pod i and direction d,
///     //   compiled.endpoints[i][d].default_deny and map_entries(compiled.endpoints[i][d])
///     // one verdict, e.g. for a request the lab observed (audit):
///     Decision d = decide(compiled, Peer::of(from), Peer::of(to), 8091, Protocol::tcp,
///                         Request::http("GET", "/compute?a=1&b=2"));
///
/// Semantics (Cilium 1.19):
///  - An endpoint selected by a rule that has rules in a direction (or enableDefaultDeny says so)
///    is default deny in that direction; otherwise everything passes in that direction.
///  - Allow rules add up; a deny rule (ingressDeny, egressDeny) wins over every allow.
///  - A rule with toPorts but no peer field allows every peer on those ports; "- {}" allows
///    nothing.
///  - A CiliumNetworkPolicy's selectors are confined to its namespace unless they name
///    io.kubernetes.pod.namespace; endpointSelector always is.
///  - A from/toEndpoints selector without io.cilium.k8s.policy.cluster matches only the cluster
///    the policy is applied to (policyDefaultLocalCluster, the default since 1.19; see Options).
///  - L7 rules on a port: requests that match no rule are refused (HTTP 403 "Access denied",
///    Kafka TOPIC_AUTHORIZATION_FAILED). An allow of the same peer and port without L7 rules
///    lets every request through: the L7 rules then have no effect for that peer.
///  - HTTP method, path and host are POSIX extended regular expressions matched against the
///    whole value; the path is the request's :path, query string included. A Request states no
///    host, headers, Kafka client id or API version: a rule that constrains them never matches.
///  - Named ports resolve against the endpoint's own ports for ingress and the peer's for egress.
///  - Entities: `all` is every peer; `cluster` is the local cluster's endpoints plus host,
///    remote-node, kube-apiserver, health, init, unmanaged and ingress; others are themselves.
namespace calcmesh::policy {

/// A port an endpoint listens on.
struct EndpointPort {
    std::string name;  ///< the container port's name, empty if unnamed
    int port = 0;
    Protocol protocol = Protocol::tcp;
};

/// A pod as policies see it: its labels, namespace and cluster make its security identity.
struct Endpoint {
    std::string name;     ///< e.g. "addition-worker": a workload's name, or a pod's
    std::string cluster;  ///< the cluster name (Cilium's cluster.name), e.g. "c3a-workers"
    std::string namespace_;
    Labels labels;                    ///< the pod's own labels, without namespace and cluster
    std::vector<EndpointPort> ports;  ///< what it listens on (named ports, lint)
    /// Not part of the system under test: a platform pod that policies name as a peer
    /// (kube-dns, a metrics scraper). The matrix leaves out pairs of two external endpoints.
    bool external = false;
    std::string source;  ///< where it is defined, for messages (may be empty)
    /// The labels of the object that creates the pod (a Deployment's metadata.labels), only for
    /// the hint "the label is on the Deployment, not on the pod template". May be empty.
    Labels object_labels;

    /// The labels of its identity: `labels`, io.kubernetes.pod.namespace and
    /// io.cilium.k8s.policy.cluster.
    Labels identity_labels() const;
    /// "c3a-workers/addition-worker".
    std::string to_string() const;
    /// The port of that name or number, if it listens on it.
    const EndpointPort* find_port(std::string_view name_or_number) const;
};

/// The endpoints policies are compiled for; indexes into it name endpoints everywhere below.
using Inventory = std::vector<Endpoint>;

struct Options {
    /// Cilium 1.19's policyDefaultLocalCluster: a selector without a cluster label means the
    /// policy's own cluster. false gives the behaviour of Cilium <= 1.18 (every cluster).
    bool default_local_cluster = true;
};

/// Which rule an entry or a verdict comes from.
struct RuleRef {
    std::string file;    ///< e.g. "policies/c3a-workers.yaml"
    std::string policy;  ///< e.g. "CiliumNetworkPolicy calcmesh/worker"
    std::string field;   ///< e.g. "spec.ingress[1].toPorts[0]"; for L7, down to rules.http[0]

    /// "policies/c3a-workers.yaml: CiliumNetworkPolicy calcmesh/worker: spec.ingress[1]".
    std::string to_string() const;
    bool operator==(const RuleRef&) const = default;
};

/// The other side of a connection: an endpoint of the inventory, an entity, or anything.
struct Peer {
    enum class Kind { any, endpoint, entity };
    Kind kind = Kind::any;
    std::size_t endpoint = 0;       ///< index into the inventory (Kind::endpoint)
    Entity entity = Entity::world;  ///< (Kind::entity); never all or cluster, which are expanded

    static Peer any() { return {}; }
    static Peer of(std::size_t endpoint) { return {Kind::endpoint, endpoint, Entity::world}; }
    static Peer of(Entity entity) { return {Kind::entity, 0, entity}; }
    std::string to_string(const Inventory& inventory) const;
    bool operator==(const Peer&) const = default;
};

/// One entry of an endpoint's policy in one direction: traffic with `peer` to port
/// `port`..`end_port` over `protocol` is allowed (or, if `deny`, dropped).
struct Entry {
    Peer peer;
    int port = 0;      ///< 0: every port
    int end_port = 0;  ///< the last port of a range; 0: `port` alone
    Protocol protocol = Protocol::any;
    bool deny = false;
    std::optional<L7Rules> l7;  ///< the requests allowed; none: every request (L4 only)
    RuleRef rule;

    bool covers(int port, Protocol protocol) const;
};

/// What applies to one endpoint in one direction.
struct DirectionPolicy {
    bool default_deny = false;         ///< selected by a rule with rules in this direction
    std::vector<RuleRef> selected_by;  ///< the specs that made it default deny
    std::vector<Entry> entries;        ///< every allow and deny, in policy order
};

struct EndpointPolicy {
    DirectionPolicy ingress;
    DirectionPolicy egress;

    const DirectionPolicy& operator[](Direction direction) const {
        return direction == Direction::ingress ? ingress : egress;
    }
    DirectionPolicy& operator[](Direction direction) {
        return direction == Direction::ingress ? ingress : egress;
    }
};

/// The policies compiled for an inventory: endpoints[i] belongs to inventory[i].
struct CompiledPolicy {
    std::vector<EndpointPolicy> endpoints;
};

/// Applies every policy to the endpoints of its cluster that it selects.
CompiledPolicy compile(const PolicySet& set, const Inventory& inventory,
                       const Options& options = {});

/// One entry per (peer, port range, protocol) of a direction, as a datapath map holds it:
/// `deny` if any deny entry has that key, `l7` if every allow entry of that key has L7 rules
/// (one without makes Cilium pass every request of that peer), with the rules behind it.
struct MapEntry {
    Peer peer;
    int port = 0;
    int end_port = 0;
    Protocol protocol = Protocol::any;
    bool deny = false;
    bool l7 = false;
    std::vector<RuleRef> rules;
};
std::vector<MapEntry> map_entries(const DirectionPolicy& policy);

/// A request above L4, to check against L7 rules.
struct Request {
    enum class Kind { none, http, kafka };
    Kind kind = Kind::none;
    std::string method;   ///< HTTP
    std::string path;     ///< HTTP: the whole :path, e.g. "/compute?a=1&b=2"
    std::string api_key;  ///< Kafka: an API key name, e.g. "produce"
    std::string topic;    ///< Kafka: empty for requests without topics

    static Request http(std::string method, std::string path) {
        return {Kind::http, std::move(method), std::move(path), {}, {}};
    }
    static Request kafka(std::string api_key, std::string topic) {
        return {Kind::kafka, {}, {}, std::move(api_key), std::move(topic)};
    }
    /// "GET /compute?a=1", "kafka produce results"; empty for none.
    std::string to_string() const;
};

/// The topic-bearing requests a Kafka client sends for an operation on a topic: "produce"
/// (produce, metadata), "consume" (fetch, offsets, metadata, offsetcommit, offsetfetch), or
/// any other API key name by itself. Empty for an unknown name.
std::vector<Request> kafka_operation(std::string_view operation, const std::string& topic);

enum class Verdict {
    allowed,     ///< passes; with a request, an L7 rule allowed it
    restricted,  ///< the connection passes, L7 rules decide each request (no request given)
    rejected,    ///< the connection passes, the request is refused (HTTP 403, Kafka error or
                 ///< no answer)
    dropped,     ///< packets are dropped (L3/L4): the client times out
};
std::string_view to_string(Verdict verdict);

/// The verdict of one side: egress at the source or ingress at the destination.
struct SideDecision {
    Direction direction = Direction::egress;
    std::size_t endpoint = 0;  ///< where it is enforced
    Verdict verdict = Verdict::allowed;
    /// The deciding rules: the allow (or deny) entries that matched; for a default-deny drop,
    /// the specs that made the endpoint default deny; for an L7 verdict, the L7 rule first.
    std::vector<RuleRef> rules;
    std::vector<std::string> l7_allowed;  ///< restricted/rejected: the requests allowed
    std::string reason;                   ///< one line, for people
};

struct Decision {
    Verdict verdict = Verdict::allowed;
    std::vector<SideDecision> sides;  ///< egress (if the source is an endpoint), then ingress

    /// The connection passes (allowed or restricted).
    bool connects() const { return verdict == Verdict::allowed || verdict == Verdict::restricted; }
};

/// The verdict for `from` connecting to `to` on `port`/`protocol` and, if given, the request.
/// An endpoint side is checked with its own cluster's policies; an entity side (host, world...)
/// has no policy of its own. At least one side must be an endpoint.
Decision decide(const CompiledPolicy& compiled, const Peer& from, const Peer& to, int port,
                Protocol protocol, const Request& request = {});

/// The endpoints of the policy's cluster that a spec's endpointSelector selects.
std::vector<std::size_t> select_subjects(const Policy& policy, const Spec& spec,
                                         const Inventory& inventory);
/// A from/toEndpoints selector as Cilium applies it: with the policy's namespace (a
/// CiliumNetworkPolicy's, unless the selector names one) and cluster (unless it names one and
/// with Options::default_local_cluster) added.
LabelSelector effective_peer_selector(const Policy& policy, const LabelSelector& selector,
                                      const Options& options);
/// Whether a selector constrains a label key (in matchLabels or matchExpressions).
bool constrains(const LabelSelector& selector, std::string_view key);

}  // namespace calcmesh::policy
