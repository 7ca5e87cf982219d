#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

namespace calcmesh::observe {

/// Sends one request to a lab's flow collector and hands every answer line to `on_line` until
/// the collector closes the connection or `on_line` returns false. Throws std::runtime_error if
/// the collector cannot be reached or answers with an error.
void ask_collector(const std::string& lab, const nlohmann::json& request,
                   const std::function<bool(const nlohmann::json&)>& on_line);

/// The one answer line of a request that has one (map, status, reload).
nlohmann::json ask_collector(const std::string& lab, const nlohmann::json& request);

}  // namespace calcmesh::observe
