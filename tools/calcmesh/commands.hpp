#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "calcmesh/command.hpp"

namespace calcmesh::tools {

/// `calcmesh up`: runs every service (and the Kafka broker) from `own_directory`.
void add_up_command(CLI::App& app, const std::string& own_directory);
/// `calcmesh submit` and `calcmesh logs`: talk to a running system.
void add_client_commands(CLI::App& app);

}  // namespace calcmesh::tools
