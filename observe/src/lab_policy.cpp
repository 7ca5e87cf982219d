#include "lab_policy.hpp"

#include <fmt/format.h>
#include <netinet/in.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <stdexcept>
#include <tuple>

#include "calcmesh/lab/identity.hpp"
#include "calcmesh/lab/lab.hpp"
#include "client.hpp"

namespace calcmesh::observe {

namespace {

namespace fs = std::filesystem;

// The policy map is keyed by single ports: a range becomes one entry per port, up to this.
constexpr int kMaxPortRange = 256;

std::vector<std::string> cluster_names(const lab::Topology& topology) {
    std::vector<std::string> names;
    for (const auto& cluster : topology.clusters()) {
        names.push_back(cluster.name);
    }
    return names;
}

std::uint8_t ip_protocol(policy::Protocol protocol) {
    switch (protocol) {
        case policy::Protocol::tcp:
            return IPPROTO_TCP;
        case policy::Protocol::udp:
            return IPPROTO_UDP;
        case policy::Protocol::sctp:
            return IPPROTO_SCTP;
        case policy::Protocol::any:
            break;
    }
    return 0;
}

// The identities a peer stands for in the lab; none for entities the lab has no address of
// (kube-apiserver, health, ...).
std::vector<std::uint32_t> peer_identities(const policy::Peer& peer,
                                           const std::vector<std::uint32_t>& identities) {
    switch (peer.kind) {
        case policy::Peer::Kind::any:
            return {0};
        case policy::Peer::Kind::endpoint:
            return {identities.at(peer.endpoint)};
        case policy::Peer::Kind::entity:
            break;
    }
    switch (peer.entity) {
        case policy::Entity::host:
            return {lab::kIdentityHost};
        case policy::Entity::remote_node:
            return {lab::kIdentityRemoteNode};
        case policy::Entity::world:
            return {lab::kIdentityWorld};
        default:
            return {};
    }
}

// "CiliumNetworkPolicy calcmesh/worker" or "CiliumClusterwideNetworkPolicy name".
PolicyRef policy_ref(const std::string& policy) {
    const auto space = policy.find(' ');
    const auto kind = policy.substr(0, space);
    const auto id = space == std::string::npos ? std::string() : policy.substr(space + 1);
    const auto slash = id.find('/');
    if (slash == std::string::npos) {
        return {id, "", kind};
    }
    return {id.substr(slash + 1), id.substr(0, slash), kind};
}

// The path and query of a URL the decoder made ("http://host:port/path?query").
std::string url_target(const std::string& url) {
    const auto scheme = url.find("://");
    const auto slash = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
    return slash == std::string::npos ? "/" : url.substr(slash);
}

// Cilium's L7 verdicts without its proxy: the request is checked with the engine and reported.
class EngineAudit final : public L7Audit {
  public:
    EngineAudit(policy::Inventory inventory, policy::CompiledPolicy compiled)
        : inventory_(std::move(inventory)), compiled_(std::move(compiled)) {}

    Verdict verdict(const lab::Endpoint& client, const lab::Endpoint& server, std::uint16_t port,
                    const Flow& request) const override {
        const auto from = peer(client);
        const auto to = peer(server);
        if (from.kind != policy::Peer::Kind::endpoint && to.kind != policy::Peer::Kind::endpoint) {
            return Verdict::forwarded;
        }
        policy::Request checked;
        if (request.http) {
            checked = policy::Request::http(request.http->method, url_target(request.http->url));
        } else if (request.kafka) {
            checked = policy::Request::kafka(request.kafka->api_key, request.kafka->topic);
        }
        const auto decision =
            policy::decide(compiled_, from, to, port, policy::Protocol::tcp, checked);
        return decision.verdict == policy::Verdict::rejected ? Verdict::audit : Verdict::forwarded;
    }

  private:
    policy::Peer peer(const lab::Endpoint& endpoint) const {
        if (!endpoint.pod.empty()) {
            for (std::size_t i = 0; i < inventory_.size(); ++i) {
                if (inventory_[i].name == endpoint.pod) {
                    return policy::Peer::of(i);
                }
            }
        }
        switch (endpoint.identity) {
            case lab::kIdentityHost:
                return policy::Peer::of(policy::Entity::host);
            case lab::kIdentityRemoteNode:
                return policy::Peer::of(policy::Entity::remote_node);
            default:
                return policy::Peer::of(policy::Entity::world);
        }
    }

    policy::Inventory inventory_;
    policy::CompiledPolicy compiled_;
};

// The applied files, in the order they were given: policy/<n>/<name>, since a file's name says
// its cluster and two files may share one (a later file replaces policies of an earlier one).
std::vector<fs::path> applied_files(const std::string& lab) {
    std::vector<fs::path> files;
    const auto dir = policy_dir(lab);
    if (!fs::is_directory(dir)) {
        return files;
    }
    std::vector<std::pair<int, fs::path>> numbered;
    for (const auto& slot : fs::directory_iterator(dir)) {
        for (const auto& file : fs::directory_iterator(slot.path())) {
            numbered.emplace_back(std::stoi(slot.path().filename().string()), file.path());
        }
    }
    std::sort(numbered.begin(), numbered.end());
    for (auto& [index, file] : numbered) {
        files.push_back(std::move(file));
    }
    return files;
}

std::string read_file(const fs::path& path) {
    std::ifstream file(path, std::ios::binary);
    if (!file) {
        throw std::invalid_argument(path.string() + ": cannot read it");
    }
    return {std::istreambuf_iterator<char>(file), {}};
}

// Tells the collector, if it runs, to read the applied policy again.
void reload_collector(const std::string& lab, std::ostream& out) {
    try {
        ask_collector(lab, {{"reload", nlohmann::json::object()}});
    } catch (const std::exception& error) {
        out << fmt::format("warning: the flow collector did not reload the policy: {}\n",
                           error.what());
    }
}

}  // namespace

policy::Inventory lab_inventory(const lab::Topology& topology) {
    std::map<std::string, int> ports;
    for (const auto& spec : lab::service_specs(topology)) {
        ports[spec.pod] = spec.port;
    }
    policy::Inventory inventory;
    const lab::Identities identities(topology);
    for (const auto& pod : identities.pods()) {
        policy::Endpoint endpoint;
        endpoint.name = pod.pod;
        endpoint.cluster = pod.cluster;
        endpoint.namespace_ = pod.namespace_;
        endpoint.labels = topology.pod(pod.pod).labels;
        endpoint.source = "lab pod " + pod.pod;
        if (const auto port = ports.find(pod.pod); port != ports.end()) {
            endpoint.ports.push_back({pod.pod == "kafka" ? "kafka" : "http", port->second});
        }
        inventory.push_back(std::move(endpoint));
    }
    return inventory;
}

LabPolicy compile_lab_policy(const lab::Topology& topology, const std::vector<fs::path>& files) {
    if (files.empty()) {
        throw std::invalid_argument("no policy files given");
    }
    for (const auto& file : files) {
        if (!fs::is_regular_file(file)) {
            throw std::invalid_argument(file.string() + ": no such file");
        }
    }
    const auto loaded = policy::load_policies(files, cluster_names(topology));
    if (!loaded.findings.empty()) {
        std::string message = "the policies are not applied:";
        for (const auto& finding : loaded.findings) {
            message += "\n  " + finding.to_string();
        }
        throw std::invalid_argument(message);
    }
    LabPolicy result;
    result.policies = loaded.set.policies.size();
    result.inventory = lab_inventory(topology);
    result.compiled = policy::compile(loaded.set, result.inventory);

    const lab::Identities identities(topology);
    std::vector<std::uint32_t> identity_of;
    for (const auto& pod : identities.pods()) {
        identity_of.push_back(pod.identity);
    }
    std::map<std::string, std::uint32_t> numbers;
    const auto number = [&](const std::vector<policy::RuleRef>& rules) -> std::uint32_t {
        if (rules.empty()) {
            return 0;
        }
        const auto [at, added] =
            numbers.emplace(rules.front().policy, static_cast<std::uint32_t>(numbers.size() + 1));
        if (added) {
            result.rules[at->second] = policy_ref(rules.front().policy);
        }
        return at->second;
    };
    // One entry per map key: a deny wins, and one allow without L7 rules lets every request by.
    std::map<std::tuple<std::uint32_t, lab::Direction, std::uint32_t, std::uint16_t, std::uint8_t>,
             lab::PolicyEntry>
        entries;
    const auto add = [&](const lab::PolicyEntry& entry) {
        const auto [at, added] = entries.try_emplace(
            {entry.subject, entry.direction, entry.peer, entry.port, entry.protocol}, entry);
        if (!added) {
            at->second.deny = at->second.deny || entry.deny;
            at->second.l7 = at->second.l7 && entry.l7;
        }
    };
    for (std::size_t i = 0; i < result.inventory.size(); ++i) {
        for (const auto direction : {policy::Direction::ingress, policy::Direction::egress}) {
            const auto& side = result.compiled.endpoints[i][direction];
            const auto lab_direction = direction == policy::Direction::ingress
                                           ? lab::Direction::ingress
                                           : lab::Direction::egress;
            if (side.default_deny) {
                result.enforced.default_deny.insert({identity_of[i], lab_direction});
            }
            for (const auto& entry : policy::map_entries(side)) {
                const int last = std::max(entry.port, entry.end_port);
                if (last - entry.port >= kMaxPortRange) {
                    throw std::invalid_argument(fmt::format(
                        "{}: the port range {}-{} is wider than the lab enforces ({} ports)",
                        entry.rules.empty() ? "a rule" : entry.rules.front().to_string(),
                        entry.port, last, kMaxPortRange));
                }
                for (const auto peer : peer_identities(entry.peer, identity_of)) {
                    for (int port = entry.port; port <= last; ++port) {
                        add({identity_of[i], lab_direction, peer, static_cast<std::uint16_t>(port),
                             ip_protocol(entry.protocol), entry.deny, entry.l7,
                             number(entry.rules)});
                    }
                }
            }
        }
    }
    for (const auto& [key, entry] : entries) {
        result.enforced.entries.push_back(entry);
    }
    return result;
}

fs::path policy_dir(const std::string& lab) {
    return lab::lab_dir(lab) / "policy";
}

void apply_lab_policy(const lab::Topology& topology, const std::vector<fs::path>& files,
                      std::ostream& out) {
    const auto compiled = compile_lab_policy(topology, files);
    lab::install_policy(topology, compiled.enforced);
    const auto dir = policy_dir(topology.lab_name());
    fs::remove_all(dir);
    for (std::size_t i = 0; i < files.size(); ++i) {
        const auto slot = dir / std::to_string(i);
        fs::create_directories(slot);
        fs::copy_file(files[i], slot / files[i].filename());
    }
    reload_collector(topology.lab_name(), out);

    std::size_t ingress = 0, egress = 0, l7 = 0;
    for (const auto& [identity, direction] : compiled.enforced.default_deny) {
        ++(direction == lab::Direction::ingress ? ingress : egress);
    }
    for (const auto& entry : compiled.enforced.entries) {
        l7 += entry.l7 ? 1 : 0;
    }
    out << fmt::format(
        "lab {}: applied {} policies from {} files: {} pods default-deny on ingress, {} on "
        "egress, {} entries in every node's policy map ({} with L7 rules, audited not enforced)\n",
        topology.lab_name(), compiled.policies, files.size(), ingress, egress,
        compiled.enforced.entries.size(), l7);
}

void remove_lab_policy(const lab::Topology& topology, const std::vector<fs::path>& files,
                       std::ostream& out) {
    if (!files.empty()) {
        std::set<std::string> removed;
        for (const auto& file : files) {
            removed.insert(read_file(file));
        }
        std::vector<fs::path> kept;
        for (const auto& file : applied_files(topology.lab_name())) {
            if (!removed.contains(read_file(file))) {
                kept.push_back(file);
            }
        }
        if (!kept.empty()) {
            // Copies of the kept files outlive the policy directory that apply rewrites.
            const auto staging = lab::lab_dir(topology.lab_name()) / "policy-kept";
            fs::remove_all(staging);
            std::vector<fs::path> copies;
            for (std::size_t i = 0; i < kept.size(); ++i) {
                fs::create_directories(staging / std::to_string(i));
                copies.push_back(staging / std::to_string(i) / kept[i].filename());
                fs::copy_file(kept[i], copies.back());
            }
            apply_lab_policy(topology, copies, out);
            fs::remove_all(staging);
            return;
        }
    }
    lab::install_policy(topology, {});
    fs::remove_all(policy_dir(topology.lab_name()));
    reload_collector(topology.lab_name(), out);
    out << fmt::format("lab {}: policies removed, every flow is allowed\n", topology.lab_name());
}

AppliedPolicy load_applied_policy(const lab::Topology& topology) {
    AppliedPolicy applied;
    applied.files = applied_files(topology.lab_name());
    if (applied.files.empty()) {
        return applied;
    }
    auto compiled = compile_lab_policy(topology, applied.files);
    applied.rules = std::move(compiled.rules);
    applied.audit =
        std::make_unique<EngineAudit>(std::move(compiled.inventory), std::move(compiled.compiled));
    return applied;
}

}  // namespace calcmesh::observe
