#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "calcmesh/error.hpp"
#include "calcmesh/policy/engine.hpp"

/// Cilium's own policy engine as a second opinion: `cilium-engine` (policy/cilium-engine, a Go
/// program built from github.com/cilium/cilium at the version the kit pins) imports the same
/// policy files into Cilium's policy repository, gives every endpoint an identity from its
/// labels, and answers the same questions as decide(), with the proxy's L7 matchers.
namespace calcmesh::policy {

/// One connection to decide: from, to, port, protocol and, if any, the request.
struct Query {
    Peer from;
    Peer to;
    int port = 0;
    Protocol protocol = Protocol::tcp;
    Request request;
};

struct CiliumAnswer {
    /// "file: policy: Cilium refuses it: ...", for each policy Cilium's parser refused (left
    /// out, as the agent does).
    std::vector<std::string> refused;
    std::vector<Decision> decisions;  ///< one per query, in order
};

/// The cilium-engine to run: $CALCMESH_CILIUM_ENGINE if set, else cilium-engine next to this
/// program's executable (build/<preset>/bin).
std::filesystem::path default_cilium_engine();

/// Asks Cilium's engine about `queries`. `policies` are the files in the order applied, as
/// load_policies read them. Fails if the program is missing (saying how to build it), fails or
/// takes longer than `timeout`.
Result<CiliumAnswer> ask_cilium(const std::filesystem::path& program, const Inventory& inventory,
                                const std::vector<PolicyFile>& policies, const Options& options,
                                const std::vector<Query>& queries,
                                std::chrono::seconds timeout = std::chrono::seconds(300));

}  // namespace calcmesh::policy
