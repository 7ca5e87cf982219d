#include "calcmesh/observe/observe_command.hpp"

#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <memory>

#include "calcmesh/command.hpp"
#include "calcmesh/lab/lab.hpp"
#include "client.hpp"
#include "collector.hpp"
#include "filter.hpp"
#include "lab_policy.hpp"
#include "printer.hpp"
#include "serve.hpp"
#include "service_map.hpp"

namespace calcmesh {

namespace {

struct ObserveOptions {
    std::string lab = "cm";
    observe::FlowFilter filter;
    std::vector<std::string> verdicts;
    std::size_t last = 0;
    bool follow = false;
    std::string output = "compact";
    bool node_name = false;
    bool serve = false;
    observe::ServeOptions serve_options;
    std::string map_prefix = "service-map";
    observe::CollectorOptions collector;
    // The parts of the command line the action looks at once it is parsed.
    CLI::App* map_command = nullptr;
    CLI::App* status_command = nullptr;
    CLI::App* collector_command = nullptr;
    CLI::Option* last_option = nullptr;
};

void add_lab_name(CLI::App* command, ObserveOptions& options) {
    command->add_option("--name", options.lab, "The lab to observe")
        ->envname("CALCMESH_LAB")
        ->capture_default_str();
}

int print_flows(ObserveOptions& options) {
    for (const auto& verdict : options.verdicts) {
        options.filter.verdict.push_back(observe::parse_verdict(verdict));
    }
    options.filter.validate();
    nlohmann::json request = {{"filter", observe::to_json(options.filter)},
                              {"follow", options.follow}};
    if (options.last_option->count() > 0) {
        request["last"] = options.last;
    }
    const bool json = options.output == "json";
    observe::ask_collector(options.lab, {{"flows", request}}, [&](const nlohmann::json& line) {
        if (json) {
            std::cout << line.dump() << '\n';
        } else if (line.contains("flow")) {
            std::cout << observe::compact_line(observe::flow_from_json(line), options.node_name)
                      << '\n';
        } else {
            std::cout << observe::compact_line(observe::lost_from_json(line)) << '\n';
        }
        std::cout.flush();
        return static_cast<bool>(std::cout);
    });
    return 0;
}

std::string edge_line(const observe::MapEdge& edge) {
    std::string line =
        fmt::format("{} -> {}  {} :{}", edge.from, edge.to, edge.protocol, edge.port);
    if (edge.requests > 0) {
        line += fmt::format("  requests={}", edge.requests);
    }
    if (edge.connections > 0) {
        line += fmt::format("  connections={}", edge.connections);
    }
    if (edge.audited > 0) {
        line += fmt::format("  AUDIT={}", edge.audited);
    }
    if (edge.dropped > 0) {
        line += fmt::format("  DROPPED={}", edge.dropped);
    }
    return line;
}

int write_map(const ObserveOptions& options) {
    const auto map = observe::ServiceMap::from_json(
        observe::ask_collector(options.lab, {{"map", nlohmann::json::object()}}));
    const auto dot = map.to_dot(fmt::format("calcmesh service map, lab {}", options.lab));
    for (const char* format : {"svg", "png"}) {
        const auto path = fmt::format("{}.{}", options.map_prefix, format);
        std::ofstream file(path, std::ios::binary);
        file << observe::render_dot(dot, format);
        if (!file) {
            throw std::runtime_error("cannot write " + path);
        }
    }
    const auto edges = map.edges();
    std::cout << fmt::format("wrote {0}.svg and {0}.png: {1} services, {2} edges\n",
                             options.map_prefix, map.services().size(), edges.size());
    for (const auto& edge : edges) {
        std::cout << "  " << edge_line(edge) << '\n';
    }
    return 0;
}

int print_status(const ObserveOptions& options) {
    const auto status = observe::ask_collector(options.lab, {{"status", nlohmann::json::object()}});
    std::cout << fmt::format(
        "lab {}: {} flows seen, {}/{} stored, {} events lost in the ring buffers, {} policy "
        "files applied\n",
        options.lab, status.at("flows_seen").get<std::uint64_t>(),
        status.at("flows_stored").get<std::uint64_t>(), status.at("capacity").get<std::uint64_t>(),
        status.at("events_lost").get<std::uint64_t>(),
        status.at("policy_files").get<std::uint64_t>());
    for (const auto& node : status.at("nodes")) {
        std::cout << fmt::format(
            "  {:<20} events={} lost={} connections={} policy_drops={}\n",
            node.at("node").get<std::string>(), node.at("events").get<std::uint64_t>(),
            node.at("lost").get<std::uint64_t>(), node.at("connections").get<std::uint64_t>(),
            node.at("policy_drops").get<std::uint64_t>());
    }
    return 0;
}

// `calcmesh lab policy`: registered here, beside the collector that audits the policy's L7
// rules, so that the lab itself does not depend on the policy engine.
void add_lab_policy_command(CLI::App& lab) {
    struct Options {
        std::string lab = "cm";
        std::vector<std::filesystem::path> files;
    };
    auto options = std::make_shared<Options>();
    const auto topology = [options] { return lab::running_lab(options->lab); };
    auto* policy = lab.add_subcommand(
        "policy", "Enforce Cilium network policies on a running lab (L7 rules are audited)");
    policy->require_subcommand(1);
    auto* apply = add_command(
        *policy, "apply",
        "Compile policy files for the lab's pods and write every node's policy maps; a file "
        "applies to the cluster its name says (c1-client.yaml)",
        [options, topology] {
            observe::apply_lab_policy(topology(), options->files, std::cout);
            return 0;
        });
    auto* remove =
        add_command(*policy, "remove",
                    "Take back applied files (by content), or all of them: then everything passes",
                    [options, topology] {
                        observe::remove_lab_policy(topology(), options->files, std::cout);
                        return 0;
                    });
    for (auto* command : {apply, remove}) {
        command->add_option("--name", options->lab, "The lab")
            ->envname("CALCMESH_LAB")
            ->capture_default_str();
    }
    apply->add_option("files", options->files, "Policy files (CiliumNetworkPolicy YAML)")
        ->required();
    remove->add_option("files", options->files, "Applied files to take back (default: all)");
}

}  // namespace

void add_observe_commands(CLI::App& app, CLI::App& lab) {
    add_lab_policy_command(lab);
    auto options = std::make_shared<ObserveOptions>();
    auto* observe = add_command(
        app, "observe",
        "Show the lab's flows like `hubble observe` (needs root); `map` draws the service map",
        [options]() -> int {
            if (options->map_command->parsed()) {
                return write_map(*options);
            }
            if (options->status_command->parsed()) {
                return print_status(*options);
            }
            if (options->collector_command->parsed()) {
                options->collector.lab = options->lab;
                return observe::run_collector(options->collector);
            }
            if (options->serve) {
                options->serve_options.lab = options->lab;
                return observe::run_serve(options->serve_options, [](const std::string& url) {
                    std::cout << "serving the service map on " << url << '\n' << std::flush;
                });
            }
            return print_flows(*options);
        });
    add_lab_name(observe, *options);
    auto& filter = options->filter;
    observe->add_option("--from-pod", filter.from_pod, "Source pod: [namespace/]<name prefix>");
    observe->add_option("--to-pod", filter.to_pod, "Destination pod: [namespace/]<name prefix>");
    observe->add_option("--from-cluster", filter.from_cluster, "Source cluster");
    observe->add_option("--to-cluster", filter.to_cluster, "Destination cluster");
    observe->add_option("--protocol", filter.protocol, "tcp, udp, icmp, http or kafka");
    observe->add_option("--verdict", options->verdicts, "FORWARDED, DROPPED or AUDIT");
    observe->add_option("--http-path", filter.http_path,
                        "Regular expression searched in the HTTP path");
    observe->add_flag("-f,--follow", options->follow, "Keep printing flows as they come");
    options->last_option = observe->add_option(
        "--last", options->last, "Print the last N matching flows (default 20, 0 with --follow)");
    observe->add_option("-o,--output", options->output, "compact or json (Hubble's flow JSON)")
        ->check(CLI::IsMember({"compact", "json"}))
        ->capture_default_str();
    observe->add_flag("--print-node-name", options->node_name,
                      "Show the cluster/node each flow was seen on");
    observe->add_flag("--serve", options->serve,
                      "Serve a page with the live service map and the latest flows");
    observe->add_option("--address", options->serve_options.address, "Address of --serve")
        ->capture_default_str();
    observe->add_option("--port", options->serve_options.port, "Port of --serve (0: any)")
        ->capture_default_str();

    auto* map =
        observe->add_subcommand("map", "Write the service map as SVG and PNG and list its edges");
    add_lab_name(map, *options);
    map->add_option("--output", options->map_prefix, "Path of the files without .svg/.png")
        ->capture_default_str();

    auto* status = observe->add_subcommand(
        "status", "Flows seen and stored, ring-buffer losses, counters of every node");
    add_lab_name(status, *options);

    auto* collector = observe->add_subcommand(
        "collector", "Run the lab's flow collector (`calcmesh lab up` starts it)");
    add_lab_name(collector, *options);
    collector->add_option("--capacity", options->collector.capacity, "Flows kept")
        ->capture_default_str();
    options->map_command = map;
    options->status_command = status;
    options->collector_command = collector;
}

}  // namespace calcmesh
