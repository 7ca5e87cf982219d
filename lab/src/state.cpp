#include "state.hpp"

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace calcmesh::lab {

namespace {

constexpr const char* kRunRoot = "/run/calcmesh-lab";
constexpr const char* kPinRoot = "/sys/fs/bpf/calcmesh-lab";

}  // namespace

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(LabProcess, pod, name, pid, start_time)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(LabFault, id, kind, target, delay_ms, since_unix_ms,
                                                heals_at_unix_ms)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(LabState, name, datapath, namespaces, pin_dir,
                                                processes, observe, faults, faults_made)

std::filesystem::path run_root() {
    return kRunRoot;
}

std::filesystem::path lab_dir(const std::string& name) {
    return run_root() / name;
}

std::filesystem::path observer_socket(const std::string& name) {
    return lab_dir(name) / "observer.sock";
}

std::filesystem::path pin_dir(const std::string& name) {
    return std::filesystem::path(kPinRoot) / name;
}

std::optional<LabState> load_state(const std::string& name) {
    const auto path = lab_dir(name) / "state.json";
    std::ifstream file(path);
    if (!file) {
        return std::nullopt;
    }
    try {
        return nlohmann::json::parse(file).get<LabState>();
    } catch (const nlohmann::json::exception& error) {
        throw std::runtime_error(fmt::format("{}: {}", path.string(), error.what()));
    }
}

void save_state(const LabState& state) {
    const auto dir = lab_dir(state.name);
    std::filesystem::create_directories(dir);
    const auto temporary = dir / "state.json.tmp";
    {
        std::ofstream file(temporary);
        file << nlohmann::json(state).dump(2) << '\n';
        if (!file) {
            throw std::runtime_error(fmt::format("cannot write {}", temporary.string()));
        }
    }
    std::filesystem::rename(temporary, dir / "state.json");
}

std::vector<std::string> list_labs() {
    std::vector<std::string> names;
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(kRunRoot, error)) {
        if (std::filesystem::exists(entry.path() / "state.json")) {
            names.push_back(entry.path().filename());
        }
    }
    return names;
}

}  // namespace calcmesh::lab
