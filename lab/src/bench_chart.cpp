#include "bench_chart.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <fstream>

#include "bench_catalog.hpp"
#include "process.hpp"

namespace calcmesh::lab {

namespace fs = std::filesystem;

void write_chart(const Table& table, const std::vector<std::string>& datapaths,
                 const fs::path& png) {
    const auto dir = fs::temp_directory_path() / fmt::format("calcmesh-bench-{}", getpid());
    fs::create_directories(dir);
    std::string script = fmt::format(
        "set terminal pngcairo size {},520 font ',11'\nset output '{}'\n"
        "set multiplot layout 1,{} title 'calcmesh lab: median per datapath (native, VXLAN, "
        "eBPF, eBPF + VXLAN)'\n"
        "set style data histograms\nset style histogram clustered gap 1\n"
        "set style fill solid 0.85 border -1\nset boxwidth 0.9\nset yrange [0:*]\n"
        "set termoption noenhanced\nset key below horizontal font ',10'\n"
        "set grid ytics\nset xtics font ',10'\n",
        380 * std::max<std::size_t>(table.size(), 3), png.string(), table.size());
    for (const auto& [workload, pairs] : in_order(table, known_workloads())) {
        const auto data_file = dir / (workload + ".dat");
        std::ofstream data(data_file);
        for (const auto& [pair, by_datapath] : in_order(*pairs, known_pairs())) {
            data << '"' << pair_short_title(pair) << '"';
            for (const auto& datapath : datapaths) {
                const auto it = by_datapath->find(datapath);
                data << ' ' << (it == by_datapath->end() ? NAN : median(values_of(it->second)));
            }
            data << '\n';
        }
        const auto info = workload_info(workload);
        script += fmt::format("set title '{} ({}, {} is better)'\nplot ",
                              info.name[0] ? info.name : workload.c_str(), info.unit,
                              info.higher_is_better ? "higher" : "lower");
        for (std::size_t i = 0; i < datapaths.size(); ++i) {
            script +=
                fmt::format("{}'{}' using {}{} title '{}'", i == 0 ? "" : ", ", data_file.string(),
                            i + 2, i == 0 ? ":xtic(1)" : "", datapaths[i]);
        }
        script += "\n";
    }
    script += "unset multiplot\n";
    run_checked({"gnuplot"}, {}, script);
    fs::remove_all(dir);
}

}  // namespace calcmesh::lab
