#pragma once

#include <CLI/CLI.hpp>

namespace calcmesh::bench {

/// Registers `calcmesh bench`: the load generator, with human or JSON output and sweeps.
/// Exit codes: 0 reported, 1 could not run, 2 bad options, 3 refused (a wrong answer, or a
/// target check such as the log records failed).
void add_bench_command(CLI::App& app);

}  // namespace calcmesh::bench
