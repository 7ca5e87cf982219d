#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "calcmesh/kube/model.hpp"

/// Who calls whom, read from the configuration of the containers: the addresses in their
/// environment, resolved to the Services of the cluster DNS that they name.
namespace calcmesh::kube {

/// A host and port, as a client connects to it.
struct Address {
    std::string host;
    int port = 0;

    std::string to_string() const { return host + ":" + std::to_string(port); }
};

/// A Service named by a cluster DNS name.
struct ServiceName {
    std::string namespace_;
    std::string name;
};

/// Parses one URL ("http://host:port/path") or a comma-separated list of "host:port" (Kafka
/// bootstrap servers) or of "LISTENER://host:port" (Kafka listeners). A URL without a port gets
/// its scheme's (http 80, https 443).
Result<std::vector<Address>> parse_addresses(std::string_view text);

/// The Service a cluster DNS name resolves through: "svc", "svc.ns", "svc.ns.svc",
/// "svc.ns.svc.cluster.local", and the per-pod names of a headless Service
/// "pod.svc.ns.svc.cluster.local". Short names are relative to `default_namespace`, as in the
/// search path of a pod there. None for IP addresses and names outside the cluster domain.
std::optional<ServiceName> service_of_host(std::string_view host,
                                           std::string_view default_namespace);

/// A connection a container is configured to open, or an address a server gives out.
struct Call {
    const Workload* from = nullptr;
    const Container* container = nullptr;
    std::string variable;  ///< the environment variable that holds the address
    std::string source;    ///< where the variable is set (see ResolvedVar::source)
    Address address;
    std::optional<ServiceName> service;  ///< none if the host is not a cluster DNS name
};

/// Whether an environment variable holds addresses this container connects to: names ending in
/// _URL or _BOOTSTRAP_SERVERS.
bool is_call_variable(std::string_view name);

/// Whether an environment variable holds addresses a server tells its clients to connect to
/// (KAFKA_ADVERTISED_LISTENERS): every client of the server must be able to reach them too.
bool is_advertised_variable(std::string_view name);

/// The calls (is_call_variable) or advertised addresses (is_advertised_variable) of every
/// container of a cluster. Fails on an environment that cannot be resolved or a value that
/// is not an address list, naming where it is set.
Result<std::vector<Call>> find_calls(const Cluster& cluster, bool (*select)(std::string_view));

}  // namespace calcmesh::kube
