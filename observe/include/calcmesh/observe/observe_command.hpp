#pragma once

#include <CLI/CLI.hpp>

namespace calcmesh {

/// Registers `calcmesh observe` (flows, the service map, the live page, the collector) on `app`
/// and `calcmesh lab policy` on `lab`, the command `add_lab_command` returns.
void add_observe_commands(CLI::App& app, CLI::App& lab);

}  // namespace calcmesh
