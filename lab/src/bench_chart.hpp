#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "bench_statistics.hpp"

namespace calcmesh::lab {

/// Draws the median of every workload, pair and datapath with gnuplot into `png`, one panel a
/// workload. Throws std::runtime_error if gnuplot fails.
void write_chart(const Table& table, const std::vector<std::string>& datapaths,
                 const std::filesystem::path& png);

}  // namespace calcmesh::lab
