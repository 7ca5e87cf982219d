#include "calcmesh/policy/cilium_engine.hpp"

#include <stdlib.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "calcmesh/process.hpp"

namespace calcmesh::policy {

namespace {

nlohmann::json party_json(const Peer& peer) {
    if (peer.kind == Peer::Kind::endpoint) {
        return {{"endpoint", peer.endpoint}};
    }
    return {{"entity", to_string(peer.entity)}};
}

nlohmann::json request_json(const Request& request) {
    switch (request.kind) {
        case Request::Kind::http:
            return {{"kind", "http"}, {"method", request.method}, {"path", request.path}};
        case Request::Kind::kafka:
            return {{"kind", "kafka"}, {"api_key", request.api_key}, {"topic", request.topic}};
        case Request::Kind::none:
            break;
    }
    return {{"kind", ""}};
}

nlohmann::json question_json(const Inventory& inventory, const std::vector<PolicyFile>& policies,
                             const Options& options, const std::vector<Query>& queries) {
    auto endpoints = nlohmann::json::array();
    for (const Endpoint& endpoint : inventory) {
        auto ports = nlohmann::json::array();
        for (const EndpointPort& port : endpoint.ports) {
            ports.push_back(
                {{"name", port.name}, {"port", port.port}, {"protocol", to_string(port.protocol)}});
        }
        endpoints.push_back({{"name", endpoint.name},
                             {"cluster", endpoint.cluster},
                             {"namespace", endpoint.namespace_},
                             {"labels", endpoint.labels},
                             {"ports", ports}});
    }
    auto files = nlohmann::json::array();
    for (const PolicyFile& file : policies) {
        files.push_back({{"path", std::filesystem::absolute(file.path).string()},
                         {"file", file.file},
                         {"cluster", file.cluster}});
    }
    auto asked = nlohmann::json::array();
    for (const Query& query : queries) {
        asked.push_back({{"from", party_json(query.from)},
                         {"to", party_json(query.to)},
                         {"port", query.port},
                         {"protocol", to_string(query.protocol)},
                         {"request", request_json(query.request)}});
    }
    return {{"inventory", endpoints},
            {"policies", files},
            {"default_local_cluster", options.default_local_cluster},
            {"queries", asked}};
}

Result<Verdict> parse_verdict(const std::string& text) {
    for (const Verdict verdict :
         {Verdict::allowed, Verdict::restricted, Verdict::rejected, Verdict::dropped}) {
        const std::string_view name = verdict == Verdict::allowed      ? "allowed"
                                      : verdict == Verdict::restricted ? "restricted"
                                      : verdict == Verdict::rejected   ? "rejected"
                                                                       : "dropped";
        if (text == name) {
            return verdict;
        }
    }
    return fail(ErrorCode::invalid_field, "unknown verdict '" + text + "'");
}

Result<CiliumAnswer> parse_answer(const std::string& text, std::size_t endpoints,
                                  std::size_t queries) {
    CiliumAnswer answer;
    try {
        const auto json = nlohmann::json::parse(text);
        for (const auto& refusal : json.at("refused")) {
            answer.refused.push_back(
                refusal.at("file").get<std::string>() + ": " +
                refusal.at("policy").get<std::string>() +
                ": Cilium refuses it: " + refusal.at("error").get<std::string>());
        }
        for (const auto& item : json.at("decisions")) {
            Decision decision;
            auto verdict = parse_verdict(item.at("verdict").get<std::string>());
            if (!verdict) {
                return verdict.error();
            }
            decision.verdict = verdict.value();
            for (const auto& side_json : item.at("sides")) {
                SideDecision side;
                side.direction = side_json.at("direction").get<std::string>() == "ingress"
                                     ? Direction::ingress
                                     : Direction::egress;
                side.endpoint = side_json.at("endpoint").get<std::size_t>();
                auto side_verdict = parse_verdict(side_json.at("verdict").get<std::string>());
                if (!side_verdict || side.endpoint >= endpoints) {
                    return fail(ErrorCode::invalid_field, "a side names no endpoint or verdict");
                }
                side.verdict = side_verdict.value();
                for (const auto& rule : side_json.at("rules")) {
                    side.rules.push_back({rule.at("file").get<std::string>(),
                                          rule.at("policy").get<std::string>(),
                                          rule.at("field").get<std::string>()});
                }
                side.l7_allowed = side_json.at("l7_allowed").get<std::vector<std::string>>();
                side.reason = side_json.at("reason").get<std::string>();
                decision.sides.push_back(std::move(side));
            }
            answer.decisions.push_back(std::move(decision));
        }
    } catch (const nlohmann::json::exception& error) {
        return fail(ErrorCode::upstream_bad_response,
                    std::string("unreadable answer: ") + error.what());
    }
    if (answer.decisions.size() != queries) {
        return fail(ErrorCode::invalid_field, "answered " +
                                                  std::to_string(answer.decisions.size()) + " of " +
                                                  std::to_string(queries) + " queries");
    }
    return answer;
}

/// A directory of its own under the temporary directory, removed when done.
class TemporaryDirectory {
  public:
    TemporaryDirectory() {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "calcmesh-cilium-XXXXXX").string();
        if (mkdtemp(pattern.data()) != nullptr) {
            path_ = pattern;
        }
    }
    ~TemporaryDirectory() {
        std::error_code ignored;
        if (!path_.empty()) {
            std::filesystem::remove_all(path_, ignored);
        }
    }
    TemporaryDirectory(const TemporaryDirectory&) = delete;
    TemporaryDirectory& operator=(const TemporaryDirectory&) = delete;
    const std::filesystem::path& path() const { return path_; }

  private:
    std::filesystem::path path_;
};

}  // namespace

std::filesystem::path default_cilium_engine() {
    if (const char* given = std::getenv("CALCMESH_CILIUM_ENGINE"); given != nullptr && *given) {
        return given;
    }
    return std::filesystem::canonical("/proc/self/exe").parent_path() / "cilium-engine";
}

Result<CiliumAnswer> ask_cilium(const std::filesystem::path& program, const Inventory& inventory,
                                const std::vector<PolicyFile>& policies, const Options& options,
                                const std::vector<Query>& queries, std::chrono::seconds timeout) {
    if (!std::filesystem::is_regular_file(program)) {
        return fail(ErrorCode::not_found,
                    program.string() +
                        ": Cilium's engine is not built (cmake --build --preset release "
                        "--target cilium-engine builds it into build/release/bin; "
                        "--cilium-engine or CALCMESH_CILIUM_ENGINE name another)");
    }
    TemporaryDirectory directory;
    if (directory.path().empty()) {
        return fail(ErrorCode::internal, "cannot create a temporary directory");
    }
    const auto question = directory.path() / "question.json";
    const auto answer = directory.path() / "answer.json";
    {
        std::ofstream out(question);
        out << question_json(inventory, policies, options, queries).dump();
        if (!out) {
            return fail(ErrorCode::internal, question.string() + ": cannot write");
        }
    }
    ChildProcess child({{program.string(), question.string(), answer.string()}, {}, false, {}});
    const auto status = child.wait_for(timeout);
    if (!status) {
        child.stop(std::chrono::seconds(2));
        return fail(ErrorCode::upstream_timeout, program.string() + " took longer than " +
                                                     std::to_string(timeout.count()) + " s");
    }
    if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
        return fail(ErrorCode::upstream_unavailable,
                    program.string() + " " + describe_wait_status(*status) + " (its error above)");
    }
    std::ifstream in(answer);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in) {
        return fail(ErrorCode::upstream_bad_response,
                    answer.string() + ": cannot read Cilium's answer");
    }
    return parse_answer(text.str(), inventory.size(), queries.size());
}

}  // namespace calcmesh::policy
