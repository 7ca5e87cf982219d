#include "printer.hpp"

#include <fmt/format.h>

#include <ctime>

namespace calcmesh::observe {

namespace {

// Go's time.StampMilli in local time, which Hubble uses: "Jan _2 15:04:05.000".
std::string stamp(std::int64_t time_ns) {
    const std::time_t seconds = time_ns / 1'000'000'000;
    std::tm local{};
    localtime_r(&seconds, &local);
    char text[32];
    std::strftime(text, sizeof(text), "%b %e %H:%M:%S", &local);
    return fmt::format("{}.{:03}", text, (time_ns / 1'000'000) % 1000);
}

std::string host(const FlowEndpoint& endpoint, const std::string& ip, std::uint16_t port) {
    const auto where = endpoint.pod_name.empty()
                           ? ip
                           : fmt::format("{}/{}/{}", endpoint.cluster_name, endpoint.namespace_,
                                         endpoint.pod_name);
    return port == 0 ? where : fmt::format("{}:{}", where, port);
}

std::string identity(const FlowEndpoint& endpoint) {
    switch (endpoint.identity) {
        case 1:
            return "(host)";
        case 2:
            return "(world)";
        case 6:
            return "(remote-node)";
    }
    return fmt::format("(ID:{})", endpoint.identity);
}

std::string type(const Flow& flow) {
    if (flow.l7) {
        return fmt::format("L7 {}-{}", flow.http ? "http" : "kafka",
                           flow.l7_response ? "response" : "request");
    }
    if (flow.verdict == Verdict::dropped) {
        return "L3_L4 " + drop_reason_text(flow.drop_reason);
    }
    return flow.event_sub_type == 3 ? "L3_L4 to-stack" : "L3_L4 to-endpoint";
}

}  // namespace

std::string compact_line(const Flow& flow, bool node_name) {
    auto src = host(flow.source, flow.source_ip, flow.source_port);
    auto dst = host(flow.destination, flow.destination_ip, flow.destination_port);
    auto src_id = identity(flow.source);
    auto dst_id = identity(flow.destination);
    const char* arrow = "->";
    if (flow.is_reply) {
        std::swap(src, dst);
        std::swap(src_id, dst_id);
        arrow = "<-";
    }
    return fmt::format("{}{}: {} {} {} {} {} {} {} ({})", stamp(flow.time_ns),
                       node_name ? " [" + flow.node_name + "]" : "", src, src_id, arrow, dst,
                       dst_id, type(flow), to_string(flow.verdict), flow.summary);
}

std::string compact_line(const LostEvents& lost) {
    return fmt::format("{} [{}]: EVENTS LOST: {} {}", stamp(lost.time_ns), lost.node_name,
                       lost.source, lost.count);
}

}  // namespace calcmesh::observe
