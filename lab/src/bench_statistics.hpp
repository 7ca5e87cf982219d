#pragma once

// The statistics of the bench's rounds: medians, and differences paired by round.

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace calcmesh::lab {

// value[workload][pair][datapath][round]
using Table =
    std::map<std::string, std::map<std::string, std::map<std::string, std::map<int, double>>>>;

/// The bench data's measurements as a table.
Table tabulate(const nlohmann::json& data);
/// The values of the rounds, in round order.
std::vector<double> values_of(const std::map<int, double>& rounds);
/// The median; NaN for no values.
double median(std::vector<double> values);

// Median of the per-round differences against native, and how many rounds agree with its sign.
struct Paired {
    double median_difference = NAN;
    int agreeing = 0;
    int rounds = 0;
};
Paired paired(const std::map<int, double>& datapath, const std::map<int, double>& native);

// The keys of `map`: those in `known` first, in that order, then the others.
template <class T>
std::vector<std::pair<std::string, const T*>> in_order(const std::map<std::string, T>& map,
                                                       const std::vector<std::string>& known) {
    std::vector<std::pair<std::string, const T*>> ordered;
    for (const auto& key : known) {
        if (const auto it = map.find(key); it != map.end()) {
            ordered.emplace_back(key, &it->second);
        }
    }
    for (const auto& [key, value] : map) {
        if (std::find(known.begin(), known.end(), key) == known.end()) {
            ordered.emplace_back(key, &value);
        }
    }
    return ordered;
}

}  // namespace calcmesh::lab
