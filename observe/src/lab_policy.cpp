#include "lab_policy.hpp"

#include <fstream>
#include <nlohmann/json.hpp>

#include "state.hpp"

namespace calcmesh::observe {

std::filesystem::path policy_dir(const std::string& lab) {
    return lab::lab_dir(lab) / "policy";
}

AppliedPolicy load_applied_policy(const lab::Topology& topology) {
    AppliedPolicy applied;
    std::ifstream file(policy_dir(topology.lab_name()) / "rules.json");
    if (!file)
        return applied;
    const auto json = nlohmann::json::parse(file);
    for (const auto& path : json.at("files"))
        applied.files.emplace_back(path.get<std::string>());
    for (const auto& [id, rule] : json.at("rules").items()) {
        applied.rules[static_cast<std::uint32_t>(std::stoul(id))] = {
            rule.at("name"), rule.value("namespace", ""), rule.at("kind")};
    }
    return applied;
}

}  // namespace calcmesh::observe
