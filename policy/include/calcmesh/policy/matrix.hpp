#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "calcmesh/error.hpp"
#include "calcmesh/policy/engine.hpp"

/// The table of every pair of parties and port with its verdict, and the intended matrix it is
/// held against.
namespace calcmesh::policy {

/// A request decided on a pair that L7 rules restrict.
struct ProbeResult {
    Request request;
    Decision decision;
};

/// One cell: `from` connecting to `to` on a port.
struct MatrixRow {
    Peer from;
    Peer to;
    int port = 0;
    Protocol protocol = Protocol::tcp;
    Decision decision;
    std::vector<ProbeResult> probes;  ///< see probes_for
};

/// The world port the matrix probes for egress to outside the clusters.
inline constexpr int kWorldPort = 443;

/// Every source (each endpoint, and the entities world and host) to every destination (each
/// endpoint on each port it listens on, and world on kWorldPort), leaving out pairs of two
/// external endpoints or two entities. Rows are in inventory order, not decided yet.
std::vector<MatrixRow> matrix_pairs(const Inventory& inventory);

/// matrix_pairs, each decided by decide().
std::vector<MatrixRow> build_matrix(const CompiledPolicy& compiled, const Inventory& inventory);

/// The requests of `probes` that L7 rules decide on a row: none unless the row is restricted,
/// then those of the kind (http, kafka) of the rules that restrict it.
std::vector<Request> probes_for(const MatrixRow& row, const std::vector<Request>& probes);

/// One line per row that connects (all rows with `all`), then a count:
/// "c1-client/job-submitter  c3a-workers/addition-worker  8091/TCP  L7 http GET /compute...".
std::string matrix_text(const std::vector<MatrixRow>& rows, const Inventory& inventory, bool all);

/// Every row with its sides, deciding rules and probed requests.
nlohmann::json matrix_json(const std::vector<MatrixRow>& rows, const Inventory& inventory);

/// A flow the architecture needs, from the intended-matrix file: from each of `from` to each
/// of `to` on `port`, and the requests that must pass (`allow`) or be refused (`deny`).
struct IntendedFlow {
    std::vector<std::string> from;  ///< endpoint names (every cluster), entities, or "*"
    std::vector<std::string> to;
    std::string port;  ///< a number or the destination's port name
    Protocol protocol = Protocol::tcp;
    std::vector<std::string> allow;  ///< "GET /compute?a=1&b=2", "produce results", ...
    std::vector<std::string> deny;
    /// L7 rules may be absent (the Kafka L7 rules are optional): then `deny` requests pass.
    bool l7_optional = false;
    /// Only pairs of two endpoints of one cluster (a per-cluster peer such as kube-dns).
    bool same_cluster = false;
    std::string field;  ///< "flows[3]", for messages
};

/// Reads the intended-matrix file: `flows: [{from, to, port, protocol, allow, deny,
/// l7: optional, same-cluster: true}]`, `from`/`to` a name or a list. Fails naming the field.
Result<std::vector<IntendedFlow>> parse_intended(const std::string& file, const std::string& yaml);

/// A request of the intended matrix: "METHOD PATH" (HTTP), or "produce TOPIC", "consume TOPIC",
/// "<apikey> [TOPIC]" (Kafka; an operation may stand for several requests). Empty if malformed.
std::vector<Request> parse_probe(const std::string& text);

/// The differences between the matrix and the intended flows: a row that connects but no flow
/// lists, a listed row that does not connect, a request with the wrong verdict, a flow that
/// matches no row. Empty when they agree.
std::vector<std::string> compare(const std::vector<MatrixRow>& rows,
                                 const std::vector<IntendedFlow>& flows,
                                 const CompiledPolicy& compiled, const Inventory& inventory);

}  // namespace calcmesh::policy
