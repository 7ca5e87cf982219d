#include "calcmesh/lab/lab_command.hpp"

#include <fmt/format.h>

#include <iostream>
#include <stdexcept>
#include <thread>

#include "bench.hpp"
#include "calcmesh/command.hpp"
#include "calcmesh/config.hpp"
#include "fault.hpp"
#include "forwarder.hpp"
#include "lab.hpp"

namespace calcmesh {

namespace {

struct LabOptions {
    std::string name = "cm";
    std::string datapath = "native";
    bool no_services = false;
    bool no_observe = false;
    std::string target;
    std::vector<std::string> command;
    std::uint16_t job_submitter_port = 8080;
    std::uint16_t help_page_port = 8081;
    std::string delay;
    std::string duration;
    std::vector<std::string> fault_ids;
};

void add_name(CLI::App* command, LabOptions& options) {
    command->add_option("--name", options.name, "Lab name, the prefix of its namespaces")
        ->envname("CALCMESH_LAB")
        ->capture_default_str();
}

void add_fault_command(CLI::App& lab, const std::shared_ptr<LabOptions>& options) {
    auto* fault = lab.add_subcommand(
        "fault",
        "Faults across the clusters: partitions, delays and killed services, until healed");
    fault->require_subcommand(1);

    const auto add = [options](lab::FaultKind kind) {
        return [options, kind] {
            lab::FaultRequest request{kind, options->target};
            if (kind == lab::FaultKind::delay) {
                request.delay = lab::parse_duration(options->delay, "delay");
            }
            if (!options->duration.empty()) {
                request.duration = lab::parse_duration(options->duration, "--for");
            }
            const auto made = lab::add_fault(options->name, request, std::cout);
            std::cout << fmt::format("lab {}: made {}\n", options->name, made.id);
            lab::print_faults(lab::require_lab(options->name), std::cout);
            return 0;
        };
    };
    const auto add_for = [options](CLI::App* command) {
        command->add_option("--for", options->duration,
                            "Heal by itself after this long (250ms, 10s, 2m); default: until "
                            "`calcmesh lab fault heal`");
    };

    const auto add_cluster_fault = [&](const std::string& name, const std::string& description,
                                       lab::FaultKind kind) {
        auto* command = add_command(*fault, name, description, add(kind));
        add_name(command, *options);
        command->add_option("cluster", options->target, "c1-client, c2-kafka, c3a-workers, ...")
            ->required();
        return command;
    };

    auto* partition = add_cluster_fault(
        "partition",
        "Cut a cluster off from the other clusters: packets between its pods and theirs are "
        "dropped both ways (the client outside still reaches it)",
        lab::FaultKind::partition);
    add_for(partition);

    auto* delay = add_cluster_fault(
        "delay",
        "Delay what a cluster's pods send to the other clusters (every round trip between them "
        "takes that much longer)",
        lab::FaultKind::delay);
    delay->add_option("delay", options->delay, "How long, e.g. 50ms (plain numbers are ms)")
        ->required();
    add_for(delay);

    auto* kill = add_command(
        *fault, "kill",
        "Kill one service of the lab with SIGKILL; it stays dead until healed (the lab does not "
        "supervise its services)",
        add(lab::FaultKind::kill));
    add_name(kill, *options);
    kill->add_option("service", options->target,
                     "A service, named as its pod: addition-worker, kafka, log-collector, ...")
        ->required();
    add_for(kill);

    auto* heal = add_command(
        *fault, "heal",
        "Remove faults (all of them, or those named): partitions and delays are lifted, killed "
        "services started again",
        [options] {
            // With --after this is the timer of `--for`: its fault may have been healed since.
            const bool delayed = !options->duration.empty();
            if (delayed) {
                const auto after = lab::parse_duration(options->duration, "--after");
                lab::require_lab(options->name);
                std::this_thread::sleep_for(after);
            }
            const auto healed =
                lab::heal_faults(options->name, options->fault_ids, delayed, std::cout);
            if (healed.empty()) {
                std::cout << fmt::format("lab {}: nothing to heal\n", options->name);
            }
            return 0;
        });
    add_name(heal, *options);
    heal->add_option("fault", options->fault_ids, "Fault ids as `status` lists them (f1, f2, ...)");
    heal->add_option("--after", options->duration,
                     "Wait this long first (what `--for` runs); a fault healed meanwhile is no "
                     "error");

    auto* status = add_command(*fault, "status", "List the faults in force", [options] {
        lab::print_faults(lab::require_lab(options->name), std::cout);
        return 0;
    });
    add_name(status, *options);
}

}  // namespace

CLI::App& add_lab_command(CLI::App& app) {
    auto* lab = app.add_subcommand(
        "lab",
        "The four-cluster topology in network namespaces, with native, VXLAN and eBPF "
        "datapaths (needs root)");
    lab->require_subcommand(1);
    auto options = std::make_shared<LabOptions>();

    auto* up =
        add_command(*lab, "up", "Build the lab and start the services in its pods", [options] {
            lab::UpOptions up_options{options->name, lab::parse_datapath(options->datapath),
                                      !options->no_services, !options->no_observe};
            lab::lab_up(up_options, std::cout);
            lab::print_status(options->name, std::cout);
            return 0;
        });
    add_name(up, *options);
    up->add_option("--datapath", options->datapath, "native, tunnel, ebpf or ebpf-tunnel")
        ->capture_default_str();
    up->add_flag("--no-services", options->no_services,
                 "Only the network: no services or Kafka in the pods");
    up->add_flag("--no-observe", options->no_observe,
                 "No flow stage and no flow collector: no policy enforcement, no flows");

    auto* down = add_command(*lab, "down", "Remove everything the lab made", [options] {
        if (!lab::lab_down(options->name, std::cout)) {
            std::cout << fmt::format("no lab named '{}'\n", options->name);
        } else {
            std::cout << fmt::format("lab {} removed\n", options->name);
        }
        return 0;
    });
    add_name(down, *options);

    auto* status = add_command(*lab, "status",
                               "Show clusters, nodes, pods, addresses and the datapath", [options] {
                                   lab::print_status(options->name, std::cout);
                                   return 0;
                               });
    add_name(status, *options);

    auto* exec = add_command(
        *lab, "exec", "Run a command in a pod, a node or the underlay",
        [options] { return lab::lab_exec(options->name, options->target, options->command); });
    add_name(exec, *options);
    exec->add_option("target", options->target, "Pod, node or 'underlay'")->required();
    exec->add_option("command", options->command, "The command, after --")->required();

    auto* datapath =
        add_command(*lab, "datapath", "Switch a running lab to another datapath", [options] {
            lab::lab_switch(options->name, lab::parse_datapath(options->datapath));
            std::cout << fmt::format("lab {}: datapath {}\n", options->name, options->datapath);
            return 0;
        });
    add_name(datapath, *options);
    datapath->add_option("mode", options->datapath, "native, tunnel, ebpf or ebpf-tunnel")
        ->required();

    auto* forward = add_command(
        *lab, "forward",
        "Expose job_submitter and help_page on 127.0.0.1 until interrupted (connections are "
        "made from inside the client pod)",
        [options] {
            lab::require_lab(options->name);
            const lab::Topology topology(options->name);
            lab::run_forwarder(topology,
                               {{options->job_submitter_port, "job-submitter", 8080},
                                {options->help_page_port, "help-page", 8081}},
                               [](const std::string& line) {
                                   std::cout << line << '\n' << std::flush;
                               });
            return 0;
        });
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
        [bench_options, smoke] {
            auto& b = *bench_options;
            if (*smoke) {
                lab::make_smoke(b);
            }
            const auto command_line = fmt::format(
                "sudo build/release/bin/calcmesh lab bench --rounds {} --stream-rounds {} "
                "--rr-transactions {} --crr-transactions {} --stream-seconds {} --cpu {} "
                "--job-rounds {} --job-seconds {} --report {}",
                b.rounds, b.stream_rounds, b.rr_transactions, b.crr_transactions, b.stream_seconds,
                b.cpu, b.job_rounds, b.job_seconds, b.report);
            lab::run_bench(b, command_line, std::cout);
            return 0;
        });
    bench->add_option("--name", bench_options->name, "Name of the lab the bench builds")
        ->capture_default_str();
    bench->add_option("--rounds", bench_options->rounds, "Rounds of TCP_RR and TCP_CRR")
        ->check(whole_number(1))
        ->capture_default_str();
    bench
        ->add_option("--stream-rounds", bench_options->stream_rounds,
                     "How many of the first rounds also run TCP_STREAM")
        ->check(whole_number(0))
        ->capture_default_str();
    bench->add_option("--rr-transactions", bench_options->rr_transactions)
        ->check(whole_number(1))
        ->capture_default_str();
    bench->add_option("--crr-transactions", bench_options->crr_transactions)
        ->check(whole_number(1))
        ->capture_default_str();
    bench->add_option("--stream-seconds", bench_options->stream_seconds)
        ->check(whole_number(1))
        ->capture_default_str();
    bench
        ->add_option("--job-rounds", bench_options->job_rounds,
                     "How many of the first rounds also run calcmesh jobs through /submit (0: "
                     "none, and the lab starts no services)")
        ->check(whole_number(0))
        ->capture_default_str();
    bench
        ->add_option("--job-seconds", bench_options->job_seconds,
                     "Seconds measured per mechanism and datapath")
        ->check(whole_number(1))
        ->capture_default_str();
    bench->add_option("--cpu", bench_options->cpu, "CPU for both client and server")
        ->check(whole_number(0))
        ->capture_default_str();
    bench
        ->add_option("--report", bench_options->report,
                     "Markdown report; the .json data and .png chart go beside it")
        ->capture_default_str();
    bench->add_option("--from", bench_options->from_data,
                      "Render the report from an earlier run's JSON without measuring");
    bench->add_flag("--smoke", *smoke, "One short round: checks that the bench works");

    add_fault_command(*lab, options);
    return *lab;
}

}  // namespace calcmesh
