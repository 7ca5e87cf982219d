#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "calcmesh/error.hpp"

namespace calcmesh::kube {

/// Runs `binary args... --print-config` with exactly the environment `environment` (nothing is
/// inherited) and returns what it prints: every configuration key the binary accepts, as
/// environment variable name and the value it would use. The binary is the authority on its
/// own keys, defaults and value checks: a value it rejects fails here with its message.
Result<std::map<std::string, std::string>> print_config(
    const std::filesystem::path& binary, const std::vector<std::string>& args,
    const std::map<std::string, std::string>& environment);

}  // namespace calcmesh::kube
