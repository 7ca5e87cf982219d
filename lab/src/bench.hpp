#pragma once

#include <iosfwd>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace calcmesh::lab {

/// How `calcmesh lab bench` measures. Request/response rounds interleave the datapaths (each
/// round runs every datapath once, in a rotating order) so that the machine's drift hits all of
/// them alike.
struct BenchOptions {
    std::string name = "bench";  ///< the lab the bench builds for itself and removes afterwards
    int rounds = 15;             ///< rounds of TCP_RR and TCP_CRR
    int stream_rounds = 5;       ///< the first rounds also run TCP_STREAM
    int rr_transactions = 20000;
    int crr_transactions = 2000;
    int stream_seconds = 3;
    int cpu = 0;          ///< client and server are both pinned to this CPU
    int job_rounds = 5;   ///< the first rounds also run calcmesh jobs through /submit; 0: none
    int job_seconds = 3;  ///< measured seconds per mechanism and datapath
    std::string report = "docs/datapath-comparison.md";  ///< .json data and .png chart beside it
    std::string from_data;  ///< render the report from an earlier run's JSON, measure nothing
};

/// Applies the short settings of the smoke test (one round, few transactions).
void make_smoke(BenchOptions& options);

/// Builds a lab, measures every workload on every pair in every datapath, removes the lab, and
/// writes the data (JSON), the chart (PNG, via gnuplot) and the Markdown report.
void run_bench(const BenchOptions& options, const std::string& command_line, std::ostream& log);

/// Writes the report and chart from the bench data (see docs/lab.md for its shape). Any workload
/// in the data gets its table, so other measurements (calcmesh jobs) can join without changes.
void write_report(const nlohmann::json& data, const std::string& report_path);

}  // namespace calcmesh::lab
