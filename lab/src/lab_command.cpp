#include "calcmesh/lab/lab_command.hpp"

#include <fmt/format.h>

#include <iostream>
#include <stdexcept>

#include "bench.hpp"
#include "calcmesh/command.hpp"
#include "forwarder.hpp"
#include "lab.hpp"

namespace calcmesh {

namespace {

// Every lab command reports failures the same way: one line on stderr, exit code 1.
template <class Fn>
std::function<int()> guarded(Fn fn) {
    return [fn = std::move(fn)]() -> int {
        try {
            return fn();
        } catch (const std::exception& error) {
            std::cerr << "calcmesh lab: " << error.what() << '\n';
            return 1;
        }
    };
}

struct LabOptions {
    std::string name = "cm";
    std::string datapath = "native";
    bool no_services = false;
    bool no_observe = false;
    std::string target;
    std::vector<std::string> command;
    std::uint16_t job_submitter_port = 8080;
    std::uint16_t help_page_port = 8081;
};

void add_name(CLI::App* command, LabOptions& options) {
    command->add_option("--name", options.name, "Lab name, the prefix of its namespaces")
        ->envname("CALCMESH_LAB")
        ->capture_default_str();
}

}  // namespace

void add_lab_command(CLI::App& app) {
    auto* lab = app.add_subcommand(
        "lab",
        "The four-cluster topology in network namespaces, with native, VXLAN and eBPF "
        "datapaths (needs root)");
    lab->require_subcommand(1);
    auto options = std::make_shared<LabOptions>();

    auto* up = add_command(
        *lab, "up", "Build the lab and start the services in its pods", guarded([options] {
            lab::UpOptions up_options{options->name, lab::parse_datapath(options->datapath),
                                      !options->no_services, !options->no_observe};
            lab::lab_up(up_options, std::cout);
            lab::print_status(options->name, std::cout);
            return 0;
        }));
    add_name(up, *options);
    up->add_option("--datapath", options->datapath, "native, tunnel, ebpf or ebpf-tunnel")
        ->capture_default_str();
    up->add_flag("--no-services", options->no_services,
                 "Only the network: no services or Kafka in the pods");
    up->add_flag("--no-observe", options->no_observe,
                 "No flow stage and no flow collector: no policy enforcement, no flows");

    auto* down = add_command(*lab, "down", "Remove everything the lab made", guarded([options] {
        if (!lab::lab_down(options->name, std::cout)) {
            std::cout << fmt::format("no lab named '{}'\n", options->name);
        } else {
            std::cout << fmt::format("lab {} removed\n", options->name);
        }
        return 0;
    }));
    add_name(down, *options);

    auto* status =
        add_command(*lab, "status", "Show clusters, nodes, pods, addresses and the datapath",
                    guarded([options] {
                        lab::print_status(options->name, std::cout);
                        return 0;
                    }));
    add_name(status, *options);

    auto* exec = add_command(
        *lab, "exec", "Run a command in a pod, a node or the underlay", guarded([options] {
            return lab::lab_exec(options->name, options->target, options->command);
        }));
    add_name(exec, *options);
    exec->add_option("target", options->target, "Pod, node or 'underlay'")->required();
    exec->add_option("command", options->command, "The command, after --")->required();

    auto* datapath = add_command(
        *lab, "datapath", "Switch a running lab to another datapath", guarded([options] {
            lab::lab_switch(options->name, lab::parse_datapath(options->datapath));
            std::cout << fmt::format("lab {}: datapath {}\n", options->name, options->datapath);
            return 0;
        }));
    add_name(datapath, *options);
    datapath->add_option("mode", options->datapath, "native, tunnel, ebpf or ebpf-tunnel")
        ->required();

    auto* forward = add_command(
        *lab, "forward",
        "Expose job_submitter and help_page on 127.0.0.1 until interrupted (connections are "
        "made from inside the client pod)",
        guarded([options] {
            lab::require_lab(options->name);
            const lab::Topology topology(options->name);
            lab::run_forwarder(topology,
                               {{options->job_submitter_port, "job-submitter", 8080},
                                {options->help_page_port, "help-page", 8081}},
                               [](const std::string& line) { std::cout << line << std::endl; });
            return 0;
        }));
    add_name(forward, *options);
    forward
        ->add_option("--job-submitter-port", options->job_submitter_port,
                     "Loopback port for job_submitter (0: any free port)")
        ->capture_default_str();
    forward
        ->add_option("--help-page-port", options->help_page_port,
                     "Loopback port for help_page (0: any free port)")
        ->capture_default_str();

    auto bench_options = std::make_shared<lab::BenchOptions>();
    auto smoke = std::make_shared<bool>(false);
    auto* bench = add_command(
        *lab, "bench",
        "Compare the datapaths (TCP_RR, TCP_CRR, TCP_STREAM on three pairs, calcmesh jobs) in a "
        "lab of its own and write the report",
        guarded([bench_options, smoke] {
            auto& b = *bench_options;
            if (*smoke)
                lab::make_smoke(b);
            const auto command_line = fmt::format(
                "sudo build/release/bin/calcmesh lab bench --rounds {} --stream-rounds {} "
                "--rr-transactions {} --crr-transactions {} --stream-seconds {} --cpu {} "
                "--job-rounds {} --job-seconds {} --report {}",
                b.rounds, b.stream_rounds, b.rr_transactions, b.crr_transactions, b.stream_seconds,
                b.cpu, b.job_rounds, b.job_seconds, b.report);
            lab::run_bench(b, command_line, std::cout);
            return 0;
        }));
    bench->add_option("--name", bench_options->name, "Name of the lab the bench builds")
        ->capture_default_str();
    bench->add_option("--rounds", bench_options->rounds, "Rounds of TCP_RR and TCP_CRR")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    bench
        ->add_option("--stream-rounds", bench_options->stream_rounds,
                     "How many of the first rounds also run TCP_STREAM")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    bench->add_option("--rr-transactions", bench_options->rr_transactions)
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    bench->add_option("--crr-transactions", bench_options->crr_transactions)
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    bench->add_option("--stream-seconds", bench_options->stream_seconds)
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    bench
        ->add_option("--job-rounds", bench_options->job_rounds,
                     "How many of the first rounds also run calcmesh jobs through /submit (0: "
                     "none, and the lab starts no services)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    bench
        ->add_option("--job-seconds", bench_options->job_seconds,
                     "Seconds measured per mechanism and datapath")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    bench->add_option("--cpu", bench_options->cpu, "CPU for both client and server")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    bench
        ->add_option("--report", bench_options->report,
                     "Markdown report; the .json data and .png chart go beside it")
        ->capture_default_str();
    bench->add_option("--from", bench_options->from_data,
                      "Render the report from an earlier run's JSON without measuring");
    bench->add_flag("--smoke", *smoke, "One short round: checks that the bench works");
}

}  // namespace calcmesh
