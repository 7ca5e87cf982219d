#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "flow.hpp"

namespace calcmesh::observe {

/// The flow filters of `calcmesh observe`, with Hubble's meaning: every kind that is set must
/// match; several values of one kind match if any does.
struct FlowFilter {
    std::vector<std::string> from_pod;  ///< "[namespace/]<pod name prefix>"
    std::vector<std::string> to_pod;
    std::vector<std::string> from_cluster;
    std::vector<std::string> to_cluster;
    std::vector<std::string> protocol;  ///< tcp, udp, icmp, http, kafka
    std::vector<Verdict> verdict;
    std::vector<std::string> http_path;  ///< regular expressions, searched in the URL path

    bool matches(const Flow& flow) const;
    /// Throws std::invalid_argument naming the option of a value that can never match (an
    /// unknown protocol, an invalid regular expression).
    void validate() const;
};

nlohmann::json to_json(const FlowFilter& filter);
/// Throws std::invalid_argument (or nlohmann::json::exception) on a malformed filter.
FlowFilter filter_from_json(const nlohmann::json& json);

}  // namespace calcmesh::observe
