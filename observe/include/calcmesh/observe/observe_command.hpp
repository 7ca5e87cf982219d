#pragma once

#include <CLI/CLI.hpp>

namespace calcmesh {

/// Registers `calcmesh observe` (flows, the service map, the live page, the collector) and
/// `calcmesh lab policy`; call after `add_lab_command`.
void add_observe_commands(CLI::App& app);

}  // namespace calcmesh
