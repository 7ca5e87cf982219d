#include "bench_statistics.hpp"

namespace calcmesh::lab {

Table tabulate(const nlohmann::json& data) {
    Table table;
    for (const auto& m : data.at("measurements")) {
        table[m.at("workload")][m.at("pair")][m.at("datapath")][m.at("round")] = m.at("value");
    }
    return table;
}

std::vector<double> values_of(const std::map<int, double>& rounds) {
    std::vector<double> values;
    values.reserve(rounds.size());
    for (const auto& [round, value] : rounds) {
        values.push_back(value);
    }
    return values;
}

double median(std::vector<double> values) {
    if (values.empty()) {
        return NAN;
    }
    std::sort(values.begin(), values.end());
    const auto middle = values.size() / 2;
    return values.size() % 2 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

Paired paired(const std::map<int, double>& datapath, const std::map<int, double>& native) {
    std::vector<double> differences;
    for (const auto& [round, value] : datapath) {
        if (const auto it = native.find(round); it != native.end()) {
            differences.push_back(value - it->second);
        }
    }
    Paired result{median(differences), 0, static_cast<int>(differences.size())};
    for (const auto difference : differences) {
        if ((difference > 0) == (result.median_difference > 0) && difference != 0) {
            ++result.agreeing;
        }
    }
    return result;
}

}  // namespace calcmesh::lab
