#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "calcmesh/lab/topology.hpp"

namespace calcmesh::lab {

/// One port of the machine's loopback forwarded to a service in the lab.
struct Forward {
    std::uint16_t listen_port;  ///< on 127.0.0.1 in the machine's namespace; 0 picks a free one
    std::string pod;            ///< the pod running the service
    std::uint16_t pod_port;
};

/// Serves the forwards until SIGINT or SIGTERM. Each connection accepted on the loopback gets a
/// socket created inside the client pod's namespace, which connects to the service's pod
/// address, so the machine's namespace gets no lab address or route and the traffic crosses the
/// lab like an outside user's. `on_ready` receives one line per forward once all listen.
void run_forwarder(const Topology& topology, const std::vector<Forward>& forwards,
                   const std::function<void(const std::string&)>& on_ready);

}  // namespace calcmesh::lab
