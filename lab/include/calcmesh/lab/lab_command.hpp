#pragma once

#include <CLI/CLI.hpp>

namespace calcmesh {

/// Registers `calcmesh lab ...`: the four-cluster topology in network namespaces with its
/// datapaths (up, down, status, exec, datapath, forward, bench, fault). Returns the `lab`
/// command, which other modules extend with subcommands of their own (`calcmesh lab policy`).
CLI::App& add_lab_command(CLI::App& app);

}  // namespace calcmesh
