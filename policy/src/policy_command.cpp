#include "calcmesh/policy/policy_command.hpp"

#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "calcmesh/command.hpp"
#include "calcmesh/config.hpp"
#include "calcmesh/policy/cilium_engine.hpp"
#include "calcmesh/policy/inventory.hpp"
#include "calcmesh/policy/lint.hpp"
#include "calcmesh/policy/matrix.hpp"

namespace calcmesh::policy {

namespace {

/// Exit codes: 0 allowed or no findings, 1 denied or findings, 2 input that cannot be used.
constexpr int kBadInput = 2;

struct CommonOptions {
    std::string manifests;
    std::vector<std::string> policies;
    std::string platform = "deploy/kubernetes/policies/platform.yaml";
    bool default_local_cluster = true;
};

/// Which engine decides: calcmesh's own, or Cilium's (cilium-engine).
struct EngineOptions {
    std::string engine = "calcmesh";
    std::string cilium_engine;  ///< empty: default_cilium_engine()

    bool cilium() const { return engine == "cilium"; }
};

struct CheckOptions {
    std::string from;
    std::string to;
    int port = 0;
    std::string protocol = "TCP";
    std::vector<std::string> http;
    std::vector<std::string> kafka;
};

struct MatrixOptions {
    bool json = false;
    bool all = false;
    std::string expect;
    std::vector<std::string> probes;
};

struct Inputs {
    kube::Mesh mesh;
    Inventory inventory;
    LoadedPolicies policies;
    Options options;
};

void add_common(CLI::App& command, CommonOptions& options) {
    command
        .add_option("--manifests", options.manifests,
                    "Folder with one rendered <cluster>.yaml per cluster (deploy/render)")
        ->required()
        ->check(CLI::ExistingDirectory);
    command
        .add_option("--policies", options.policies,
                    "Policy files or folders, applied in order; a file is for the cluster its "
                    "name says (<cluster>.yaml)")
        ->required()
        ->check(CLI::ExistingPath);
    command
        .add_option("--platform", options.platform,
                    "Pods every cluster runs outside the manifests (kube-dns, ...)")
        ->capture_default_str()
        ->check(CLI::ExistingFile);
    command
        .add_option("--default-local-cluster", options.default_local_cluster,
                    "A selector without io.cilium.k8s.policy.cluster means the local cluster "
                    "(Cilium 1.19 policyDefaultLocalCluster); false: every cluster (<= 1.18)")
        ->capture_default_str();
}

void add_engine(CLI::App& command, EngineOptions& options) {
    command
        .add_option("--engine", options.engine,
                    "Who decides: calcmesh's engine, or Cilium's own (cilium-engine, built from "
                    "cilium/cilium at the kit's version)")
        ->capture_default_str()
        ->check(CLI::IsMember({"calcmesh", "cilium"}));
    command.add_option("--cilium-engine", options.cilium_engine,
                       "The cilium-engine program (default: $CALCMESH_CILIUM_ENGINE, else "
                       "cilium-engine next to calcmesh)");
}

/// Loads everything; prints what is wrong and returns nothing if it cannot be used.
std::optional<Inputs> load(const CommonOptions& options, std::string_view command,
                           bool policy_findings_fatal) {
    auto mesh = kube::load_mesh(options.manifests);
    if (!mesh) {
        std::cerr << "calcmesh policy " << command << ": " << mesh.error().message << '\n';
        return std::nullopt;
    }
    auto inventory = load_inventory(mesh.value(), options.platform);
    if (!inventory) {
        std::cerr << "calcmesh policy " << command << ": " << inventory.error().message << '\n';
        return std::nullopt;
    }
    std::vector<std::string> clusters;
    for (const kube::Cluster& cluster : mesh.value().clusters) {
        clusters.push_back(cluster.name);
    }
    std::vector<std::filesystem::path> paths(options.policies.begin(), options.policies.end());
    Inputs inputs{std::move(mesh).value(), std::move(inventory).value(),
                  load_policies(paths, clusters), Options{options.default_local_cluster}};
    if (policy_findings_fatal && !inputs.policies.findings.empty()) {
        for (const Finding& finding : inputs.policies.findings) {
            std::cerr << "error: " << finding.to_string() << '\n';
        }
        std::cerr << "calcmesh policy " << command
                  << ": the policies have errors (calcmesh policy lint lists them)\n";
        return std::nullopt;
    }
    return inputs;
}

/// The decisions of the chosen engine, one per query; prints what went wrong if there are none.
std::optional<std::vector<Decision>> decide_queries(const Inputs& inputs,
                                                    const Inventory& inventory,
                                                    const EngineOptions& engine,
                                                    const std::vector<Query>& queries,
                                                    std::string_view command) {
    std::vector<Decision> decisions;
    if (!engine.cilium()) {
        const CompiledPolicy compiled = compile(inputs.policies.set, inventory, inputs.options);
        for (const Query& query : queries) {
            decisions.push_back(
                decide(compiled, query.from, query.to, query.port, query.protocol, query.request));
        }
        return decisions;
    }
    const std::filesystem::path program = engine.cilium_engine.empty()
                                              ? default_cilium_engine()
                                              : std::filesystem::path(engine.cilium_engine);
    auto answer = ask_cilium(program, inventory, inputs.policies.files, inputs.options, queries);
    if (!answer) {
        std::cerr << "calcmesh policy " << command << ": " << answer.error().message << '\n';
        return std::nullopt;
    }
    if (!answer.value().refused.empty()) {
        for (const auto& refusal : answer.value().refused) {
            std::cerr << "error: " << refusal << '\n';
        }
        std::cerr << "calcmesh policy " << command << ": Cilium refuses these policies\n";
        return std::nullopt;
    }
    return std::move(answer).value().decisions;
}

int run_lint(const CommonOptions& options) {
    auto inputs = load(options, "lint", false);
    if (!inputs) {
        return kBadInput;
    }
    std::vector<Finding> findings = inputs->policies.findings;
    const auto semantic = lint(inputs->policies.set, inputs->inventory, inputs->options);
    findings.insert(findings.end(), semantic.begin(), semantic.end());
    for (const Finding& finding : findings) {
        std::cout << "error: " << finding.to_string() << '\n';
    }
    for (const auto& note : inputs->policies.replaced) {
        std::cout << "note: " << note << '\n';
    }
    std::cout << "calcmesh policy lint: " << inputs->mesh.clusters.size() << " clusters, "
              << inputs->inventory.size() << " endpoints, " << inputs->policies.set.policies.size()
              << " policies: " << findings.size() << " error" << (findings.size() == 1 ? "" : "s")
              << '\n';
    return findings.empty() ? 0 : 1;
}

/// A party of `check`: an entity, CLUSTER/NAME of an endpoint, or CLUSTER/key=value,... for a
/// pod the manifests do not have (namespace calcmesh unless io.kubernetes.pod.namespace says).
Result<Peer> resolve_party(const std::string& text, Inventory& inventory,
                           const std::vector<std::string>& clusters) {
    if (const auto entity = parse_entity(text);
        entity && *entity != Entity::all && *entity != Entity::cluster) {
        return Peer::of(*entity);
    }
    const auto slash = text.find('/');
    if (slash == std::string::npos) {
        return fail(ErrorCode::invalid_field,
                    "'" + text +
                        "' is neither an entity (world, host, remote-node, ...) nor "
                        "CLUSTER/WORKLOAD nor CLUSTER/key=value,...");
    }
    const std::string cluster = text.substr(0, slash);
    const std::string rest = text.substr(slash + 1);
    if (std::find(clusters.begin(), clusters.end(), cluster) == clusters.end()) {
        return fail(ErrorCode::invalid_field, "no cluster '" + cluster + "' in the manifests");
    }
    if (rest.find('=') == std::string::npos) {
        std::string known;
        for (std::size_t i = 0; i < inventory.size(); ++i) {
            if (inventory[i].cluster != cluster) {
                continue;
            }
            if (inventory[i].name == rest) {
                return Peer::of(i);
            }
            known += (known.empty() ? "" : ", ") + inventory[i].name;
        }
        return fail(ErrorCode::not_found,
                    "no endpoint '" + rest + "' in " + cluster + " (there: " + known + ")");
    }
    Endpoint endpoint{rest, cluster, "calcmesh", {}, {}, false, "the command line", {}};
    std::stringstream pairs(rest);
    std::string pair;
    while (std::getline(pairs, pair, ',')) {
        const auto equals = pair.find('=');
        if (equals == std::string::npos || equals == 0) {
            return fail(ErrorCode::invalid_field, "'" + pair + "' is not key=value");
        }
        const std::string key = pair.substr(0, equals);
        const std::string value = pair.substr(equals + 1);
        if (key == kNamespaceLabel) {
            endpoint.namespace_ = value;
        } else {
            endpoint.labels[key] = value;
        }
    }
    inventory.push_back(std::move(endpoint));
    return Peer::of(inventory.size() - 1);
}

void print_decision(const Decision& decision, const Inventory& inventory) {
    for (const SideDecision& side : decision.sides) {
        std::cout << "  " << std::left << std::setw(8) << to_string(side.direction)
                  << inventory[side.endpoint].to_string() << ": " << to_string(side.verdict) << ": "
                  << side.reason << '\n';
        if (side.verdict == Verdict::restricted || side.verdict == Verdict::rejected) {
            for (const auto& rule : side.l7_allowed) {
                std::cout << "          allows " << rule << '\n';
            }
        }
    }
}

int run_check(const CommonOptions& common, const EngineOptions& engine,
              const CheckOptions& options) {
    // Cilium's engine reads the policy files itself: what calcmesh's reader finds does not stop it.
    auto inputs = load(common, "check", !engine.cilium());
    if (!inputs) {
        return kBadInput;
    }
    std::vector<std::string> clusters;
    for (const kube::Cluster& cluster : inputs->mesh.clusters) {
        clusters.push_back(cluster.name);
    }
    Inventory& inventory = inputs->inventory;
    auto from = resolve_party(options.from, inventory, clusters);
    auto to = from ? resolve_party(options.to, inventory, clusters) : from;
    const auto protocol = parse_protocol(options.protocol);
    std::string problem = !from ? "--from: " + from.error().message
                          : !to ? "--to: " + to.error().message
                                : "";
    if (problem.empty() && from.value().kind != Peer::Kind::endpoint &&
        to.value().kind != Peer::Kind::endpoint) {
        problem = "--from and --to are both entities: one side must be a pod";
    }
    if (problem.empty() && (!protocol || *protocol == Protocol::any)) {
        problem = "--protocol: TCP, UDP or SCTP";
    }
    std::vector<Request> requests;
    if (!options.http.empty()) {
        requests.push_back(Request::http(options.http[0], options.http[1]));
    } else if (!options.kafka.empty()) {
        requests = kafka_operation(options.kafka[0], options.kafka[1]);
        if (requests.empty() && problem.empty()) {
            problem = "--kafka: '" + options.kafka[0] +
                      "' is neither produce, consume nor a Kafka API key name";
        }
    }
    if (!problem.empty()) {
        std::cerr << "calcmesh policy check: " << problem << '\n';
        return kBadInput;
    }
    if (requests.empty()) {
        requests.push_back({});
    }
    std::vector<Query> queries;
    queries.reserve(requests.size());
    for (const Request& request : requests) {
        queries.push_back({from.value(), to.value(), options.port, *protocol, request});
    }
    const auto decided = decide_queries(*inputs, inventory, engine, queries, "check");
    if (!decided) {
        return kBadInput;
    }
    const std::vector<Decision>& decisions = *decided;
    Verdict worst = Verdict::allowed;
    for (const Decision& decision : decisions) {
        worst = std::max(worst, decision.verdict);
    }
    std::string asked = options.http.empty() && options.kafka.empty() ? ""
                        : !options.http.empty()
                            ? " " + options.http[0] + " " + options.http[1]
                            : " kafka " + options.kafka[0] + " " + options.kafka[1];
    std::cout << from.value().to_string(inventory) << " -> " << to.value().to_string(inventory)
              << " " << options.port << "/" << to_string(*protocol) << asked << ": "
              << to_string(worst) << '\n';
    for (std::size_t i = 0; i < decisions.size(); ++i) {
        if (requests.size() > 1) {
            std::cout << " " << requests[i].to_string() << ": " << to_string(decisions[i].verdict)
                      << '\n';
        }
        print_decision(decisions[i], inventory);
    }
    return worst == Verdict::allowed || worst == Verdict::restricted ? 0 : 1;
}

int run_matrix(const CommonOptions& common, const EngineOptions& engine,
               const MatrixOptions& options) {
    if (engine.cilium() && !options.expect.empty()) {
        std::cerr << "calcmesh policy matrix: --expect checks calcmesh's engine against the "
                     "intended matrix; with --engine cilium, compare the two engines' --json "
                     "instead (policy/tests/conformance.py)\n";
        return kBadInput;
    }
    std::vector<Request> probes;
    for (const auto& text : options.probes) {
        auto parsed = parse_probe(text);
        if (parsed.empty()) {
            std::cerr << "calcmesh policy matrix: --probe '" << text
                      << "': neither \"METHOD /path\" nor \"produce|consume|<apikey> TOPIC\"\n";
            return kBadInput;
        }
        // Operations share requests (produce and consume both send metadata): each once.
        for (Request& request : parsed) {
            if (std::none_of(probes.begin(), probes.end(), [&](const Request& known) {
                    return known.to_string() == request.to_string();
                })) {
                probes.push_back(std::move(request));
            }
        }
    }
    auto inputs = load(common, "matrix", !engine.cilium());
    if (!inputs) {
        return kBadInput;
    }
    std::vector<IntendedFlow> flows;
    if (!options.expect.empty()) {
        std::ifstream in(options.expect);
        std::ostringstream text;
        text << in.rdbuf();
        auto parsed =
            parse_intended(std::filesystem::path(options.expect).filename().string(), text.str());
        if (!in || !parsed) {
            std::cerr << "calcmesh policy matrix: "
                      << (!in ? options.expect + ": cannot read" : parsed.error().message) << '\n';
            return kBadInput;
        }
        flows = std::move(parsed).value();
    }
    auto rows = matrix_pairs(inputs->inventory);
    std::vector<Query> queries;
    queries.reserve(rows.size());
    for (const MatrixRow& row : rows) {
        queries.push_back({row.from, row.to, row.port, row.protocol, {}});
    }
    const auto decisions = decide_queries(*inputs, inputs->inventory, engine, queries, "matrix");
    if (!decisions) {
        return kBadInput;
    }
    queries.clear();
    for (std::size_t i = 0; i < rows.size(); ++i) {
        rows[i].decision = (*decisions)[i];
        for (const Request& request : probes_for(rows[i], probes)) {
            rows[i].probes.push_back({request, {}});
            queries.push_back({rows[i].from, rows[i].to, rows[i].port, rows[i].protocol, request});
        }
    }
    if (!queries.empty()) {
        const auto probed = decide_queries(*inputs, inputs->inventory, engine, queries, "matrix");
        if (!probed) {
            return kBadInput;
        }
        auto next = probed->begin();
        for (MatrixRow& row : rows) {
            for (ProbeResult& probe : row.probes) {
                probe.decision = *next++;
            }
        }
    }
    if (options.json) {
        std::cout << matrix_json(rows, inputs->inventory).dump(2) << '\n';
    } else {
        for (const auto& note : inputs->policies.replaced) {
            std::cout << "note: " << note << '\n';
        }
        std::cout << matrix_text(rows, inputs->inventory, options.all);
    }
    if (options.expect.empty()) {
        return 0;
    }
    const CompiledPolicy compiled =
        compile(inputs->policies.set, inputs->inventory, inputs->options);
    const auto differences = compare(rows, flows, compiled, inputs->inventory);
    auto& out = options.json ? std::cerr : std::cout;
    for (const auto& difference : differences) {
        out << "differs: " << difference << '\n';
    }
    out << "calcmesh policy matrix: " << rows.size() << " pairs against " << flows.size()
        << " intended flows of " << options.expect << ": " << differences.size() << " difference"
        << (differences.size() == 1 ? "" : "s") << '\n';
    return differences.empty() ? 0 : 1;
}

}  // namespace

void add_policy_command(CLI::App& app) {
    auto* policy = app.add_subcommand(
        "policy", "Check the Cilium network policies offline against the rendered manifests");
    policy->require_subcommand(1);

    auto lint_options = std::make_shared<CommonOptions>();
    auto* lint_command = add_command(
        *policy, "lint",
        "Report what Cilium would reject and what is surely a mistake, naming file, policy, field",
        [lint_options] { return run_lint(*lint_options); });
    add_common(*lint_command, *lint_options);

    auto check_common = std::make_shared<CommonOptions>();
    auto check_engine = std::make_shared<EngineOptions>();
    auto check_options = std::make_shared<CheckOptions>();
    auto* check = add_command(*policy, "check",
                              "Whether one connection (and request) is allowed, and which rule "
                              "decides; exit 0 allowed, 1 denied",
                              [check_common, check_engine, check_options] {
                                  return run_check(*check_common, *check_engine, *check_options);
                              });
    add_common(*check, *check_common);
    add_engine(*check, *check_engine);
    check
        ->add_option("--from", check_options->from,
                     "CLUSTER/WORKLOAD, CLUSTER/key=value,... (a pod with those labels), or an "
                     "entity: world, host, remote-node, ...")
        ->required();
    check->add_option("--to", check_options->to, "Like --from")->required();
    check->add_option("--port", check_options->port, "Destination port")
        ->required()
        ->check(whole_number(1, 65535));
    check->add_option("--protocol", check_options->protocol, "TCP, UDP or SCTP")
        ->capture_default_str();
    auto* http = check
                     ->add_option("--http", check_options->http,
                                  "An HTTP request: METHOD PATH (the whole path, query included)")
                     ->expected(2);
    check
        ->add_option("--kafka", check_options->kafka,
                     "A Kafka operation: produce TOPIC, consume TOPIC, or APIKEY TOPIC")
        ->expected(2)
        ->excludes(http);

    auto matrix_common = std::make_shared<CommonOptions>();
    auto matrix_engine = std::make_shared<EngineOptions>();
    auto matrix_options = std::make_shared<MatrixOptions>();
    auto* matrix =
        add_command(*policy, "matrix",
                    "Every pair of pods (and world, host) on every port, with its "
                    "verdict; --expect compares it with the intended matrix",
                    [matrix_common, matrix_engine, matrix_options] {
                        return run_matrix(*matrix_common, *matrix_engine, *matrix_options);
                    });
    add_common(*matrix, *matrix_common);
    add_engine(*matrix, *matrix_engine);
    matrix->add_flag("--json", matrix_options->json, "Every pair as JSON, with the deciding rules");
    matrix->add_flag("--all", matrix_options->all, "Text: list the dropped pairs too");
    matrix
        ->add_option("--expect", matrix_options->expect,
                     "The intended matrix (YAML); exit 1 on any difference")
        ->check(CLI::ExistingFile);
    matrix->add_option("--probe", matrix_options->probes,
                       "A request (\"GET /about\", \"produce results\", \"metadata\") to decide on "
                       "every pair whose L7 rules of its kind restrict it; --json lists them");
}

}  // namespace calcmesh::policy
