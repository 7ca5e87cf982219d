#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "calcmesh/lab/lab.hpp"
#include "calcmesh/lab/topology.hpp"
#include "state.hpp"

namespace calcmesh::lab {

/// Starts every service in its pod, records them in the state and waits until each answers
/// on its port (GET /readyz for HTTP services). Throws std::runtime_error naming the service and
/// its log file if one does not come up.
void start_services(const Topology& topology, LabState& state, std::ostream& log);

/// Starts one service in its pod, records it and waits until it answers (as start_services).
void start_service(const Topology& topology, LabState& state, const ServiceSpec& spec,
                   std::ostream& log);

}  // namespace calcmesh::lab
