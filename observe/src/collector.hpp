#pragma once

#include <cstddef>
#include <string>

namespace calcmesh::observe {

/// The flow collector of a lab, which `calcmesh lab up` starts: it reads every node's ring
/// buffer, decodes the events into flows, keeps the last `capacity` of them and the service map,
/// reports ring-buffer losses, and serves all of it on the lab's unix socket.
struct CollectorOptions {
    std::string lab;
    std::size_t capacity = 65536;
};

/// Runs until SIGTERM or SIGINT; returns the exit code. Throws std::runtime_error if the lab
/// has no flow stage or the socket cannot be made.
int run_collector(const CollectorOptions& options);

}  // namespace calcmesh::observe
