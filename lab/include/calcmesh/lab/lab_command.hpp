#pragma once

#include <CLI/CLI.hpp>

namespace calcmesh {

/// Registers `calcmesh lab ...`: the four-cluster topology in network namespaces with its
/// datapaths (up, down, status, exec, datapath, forward, bench, fault).
void add_lab_command(CLI::App& app);

}  // namespace calcmesh
