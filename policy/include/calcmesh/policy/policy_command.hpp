#pragma once

#include <CLI/CLI.hpp>

namespace calcmesh::policy {

/// Registers `calcmesh policy lint|check|matrix`: the policies of every cluster checked against
/// the rendered manifests, without a cluster (docs/policy.md).
void add_policy_command(CLI::App& app);

}  // namespace calcmesh::policy
