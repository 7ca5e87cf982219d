#include "filter.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <regex>
#include <stdexcept>

namespace calcmesh::observe {

namespace {

constexpr const char* kProtocols[] = {"tcp", "udp", "icmp", "http", "kafka"};

bool pod_matches(const std::string& selector, const FlowEndpoint& endpoint) {
    if (endpoint.pod_name.empty()) {
        return false;
    }
    const auto slash = selector.find('/');
    if (slash == std::string::npos) {
        return endpoint.pod_name.starts_with(selector);
    }
    return endpoint.namespace_ == selector.substr(0, slash) &&
           endpoint.pod_name.starts_with(selector.substr(slash + 1));
}

template <class T, class Match>
bool any_or_empty(const std::vector<T>& values, Match match) {
    return values.empty() || std::any_of(values.begin(), values.end(), match);
}

bool protocol_matches(const std::string& protocol, const Flow& flow) {
    if (protocol == "http") {
        return flow.http.has_value();
    }
    if (protocol == "kafka") {
        return flow.kafka.has_value();
    }
    // L7 flows travel over TCP: `--protocol tcp` shows them too, as in Hubble.
    return (flow.protocol == 6 && protocol == "tcp") ||
           (flow.protocol == 17 && protocol == "udp") || (flow.protocol == 1 && protocol == "icmp");
}

}  // namespace

bool FlowFilter::matches(const Flow& flow) const {
    return any_or_empty(from_pod,
                        [&](const std::string& pod) { return pod_matches(pod, flow.source); }) &&
           any_or_empty(
               to_pod,
               [&](const std::string& pod) { return pod_matches(pod, flow.destination); }) &&
           any_or_empty(
               from_cluster,
               [&](const std::string& name) { return flow.source.cluster_name == name; }) &&
           any_or_empty(
               to_cluster,
               [&](const std::string& name) { return flow.destination.cluster_name == name; }) &&
           any_or_empty(protocol,
                        [&](const std::string& name) { return protocol_matches(name, flow); }) &&
           any_or_empty(verdict, [&](Verdict v) { return flow.verdict == v; }) &&
           any_or_empty(http_path, [&](const std::string& pattern) {
               return flow.http && std::regex_search(flow.http_path(), std::regex(pattern));
           });
}

void FlowFilter::validate() const {
    for (const auto& name : protocol) {
        if (std::find(std::begin(kProtocols), std::end(kProtocols), name) == std::end(kProtocols)) {
            throw std::invalid_argument(fmt::format(
                "--protocol {}: unknown protocol (use tcp, udp, icmp, http or kafka)", name));
        }
    }
    for (const auto& pattern : http_path) {
        try {
            std::regex{pattern};
        } catch (const std::regex_error& error) {
            throw std::invalid_argument(
                fmt::format("--http-path {}: not a regular expression: {}", pattern, error.what()));
        }
    }
}

nlohmann::json to_json(const FlowFilter& filter) {
    std::vector<std::string> verdicts;
    verdicts.reserve(filter.verdict.size());
    for (const auto verdict : filter.verdict) {
        verdicts.push_back(to_string(verdict));
    }
    return {{"from_pod", filter.from_pod},         {"to_pod", filter.to_pod},
            {"from_cluster", filter.from_cluster}, {"to_cluster", filter.to_cluster},
            {"protocol", filter.protocol},         {"verdict", verdicts},
            {"http_path", filter.http_path}};
}

FlowFilter filter_from_json(const nlohmann::json& json) {
    const auto list = [&](const char* key) { return json.value(key, std::vector<std::string>{}); };
    FlowFilter filter{list("from_pod"),   list("to_pod"),   list("from_cluster"),
                      list("to_cluster"), list("protocol"), {},
                      list("http_path")};
    for (const auto& verdict : list("verdict")) {
        filter.verdict.push_back(parse_verdict(verdict));
    }
    filter.validate();
    return filter;
}

}  // namespace calcmesh::observe
