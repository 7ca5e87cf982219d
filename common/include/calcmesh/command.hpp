#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace calcmesh {

/// Registers a subcommand of the `calcmesh` tool whose action returns the exit code.
/// Options are added to the returned app; the action runs after they are parsed. An exception
/// from the action is one line on stderr, prefixed with the command's whole name
/// ("calcmesh lab fault partition: ..."), and exit code 1.
CLI::App* add_command(CLI::App& parent, const std::string& name, const std::string& description,
                      std::function<int()> action);

/// Parses the command line and runs the chosen subcommand; returns the exit code.
int run_commands(CLI::App& app, int argc, char** argv);

}  // namespace calcmesh
