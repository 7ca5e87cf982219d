#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "state.hpp"
#include "topology.hpp"

namespace calcmesh::lab {

/// A process the lab runs in a pod: the real calcmesh services and the Kafka broker.
struct ServiceSpec {
    std::string pod;
    std::string name;
    int port;
    std::vector<std::string> argv;
};

/// The services of the lab, in start order (Kafka and log_collector before their clients),
/// configured as in the clusters: listening on the pod address, with peers by service name.
std::vector<ServiceSpec> service_specs(const Topology& topology);

/// Starts every service in its pod, records them in the state and waits until each answers
/// on its port (GET /readyz for HTTP services). Throws std::runtime_error naming the service and
/// its log file if one does not come up.
void start_services(const Topology& topology, LabState& state, std::ostream& log);

/// Starts one service in its pod, records it and waits until it answers (as start_services).
void start_service(const Topology& topology, LabState& state, const ServiceSpec& spec,
                   std::ostream& log);

}  // namespace calcmesh::lab
