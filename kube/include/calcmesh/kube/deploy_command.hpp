#pragma once

#include <CLI/CLI.hpp>

namespace calcmesh::kube {

/// Registers `calcmesh deploy check --rendered DIR [--cilium DIR] [--dockerfile FILE]
/// [--bin DIR]`: loads the rendered manifests of every cluster and runs check_deploy, printing
/// one line per finding; exit code 1 if there is any.
void add_deploy_command(CLI::App& app);

}  // namespace calcmesh::kube
