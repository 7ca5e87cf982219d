#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "bench.hpp"
#include "bench_catalog.hpp"
#include "bench_chart.hpp"
#include "bench_statistics.hpp"
#include "calcmesh/lab/lab.hpp"

namespace calcmesh::lab {

namespace fs = std::filesystem;

namespace {

std::string number(double value) {
    return std::abs(value) >= 100 ? fmt::format("{:.0f}", value) : fmt::format("{:.2f}", value);
}

// Compares this run's cross-cluster TCP_RR with the ordering Cilium reports, in words that
// follow the data rather than assume it.
std::string cilium_comparison(const Table& table) {
    const auto rr = table.find("tcp_rr");
    if (rr == table.end() || !rr->second.contains("cross-cluster")) {
        return "No TCP_RR data.\n";
    }
    const auto& by_datapath = rr->second.at("cross-cluster");
    if (!by_datapath.contains("native")) {
        return "No native TCP_RR data.\n";
    }
    const auto& native = by_datapath.at("native");
    const auto against = [&](const char* datapath) {
        if (!by_datapath.contains(datapath)) {
            return Paired{};
        }
        return paired(by_datapath.at(datapath), native);
    };
    const auto describe = [](const Paired& p) {
        return fmt::format("{:.2f} µs {} ({}/{} rounds agree)", std::abs(p.median_difference),
                           p.median_difference <= 0 ? "faster" : "slower", p.agreeing, p.rounds);
    };
    const auto ebpf = against("ebpf");
    const auto tunnel = against("tunnel");
    const auto ebpf_tunnel = against("ebpf-tunnel");
    const bool same_order = ebpf.median_difference <= 0 && tunnel.median_difference > 0;
    return fmt::format(
        "Cilium's CNI performance benchmark (docs: operations/performance/benchmark; two "
        "bare-metal 32-thread nodes with 100 Gbit/s NICs, netperf) reports that with eBPF host "
        "routing a single TCP stream \"can outperform even the node-to-node baseline\" and "
        "TCP_RR reaches \"almost the same request/response rate as the baseline\", while legacy "
        "host routing through the kernel stack and iptables costs more, most visibly in "
        "TCP_CRR; its v1.8 evaluation found tunneling behind native routing because of the UDP "
        "encapsulation. In this run, across clusters, TCP_RR with eBPF host routing was {} than "
        "native routing, kernel VXLAN {} and eBPF over VXLAN {} (paired medians). {}\n\n"
        "The differences are microseconds, far from the gains Cilium shows, for three reasons. "
        "The lab's nodes have no iptables or conntrack rules, so the kernel path that eBPF "
        "bypasses is already short; much of Cilium's gain comes from skipping netfilter. Veth "
        "pairs inside one VM have no NIC, interrupts or wire, so per-packet costs are CPU-bound "
        "and alike in every datapath except for the work each one skips. And with 2 vCPUs both "
        "ends run pinned to one CPU, while Cilium's multi-stream figures use many cores. Bulk "
        "throughput is damped further because GSO/GRO carry 64 KiB super-packets, spreading "
        "per-packet savings over many segments, while VXLAN pays for its smaller MTU and the "
        "encapsulation. The VM's drift between runs is of the same order as these differences, "
        "so only the paired differences and their sign agreement should be read as results.\n",
        describe(ebpf), describe(tunnel), describe(ebpf_tunnel),
        same_order ? "That is the ordering Cilium reports: eBPF host routing no slower than "
                     "native routing, encapsulation slower."
                   : "That is not the ordering Cilium reports (eBPF host routing no slower than "
                     "native routing, encapsulation slower); at differences this small the "
                     "machine's noise can reorder them.");
}

}  // namespace

void write_report(const nlohmann::json& data, const std::string& report_path) {
    const auto table = tabulate(data);
    std::vector<std::string> datapaths;
    for (const auto datapath : all_datapaths()) {
        datapaths.emplace_back(to_string(datapath));
    }
    const auto png = fs::path(report_path).replace_extension(".png");
    write_chart(table, datapaths, png);

    const auto& env = data.at("environment");
    const auto& opts = data.at("options");
    std::string md = fmt::format(
        "# Datapath comparison: native routing, VXLAN and eBPF in the calcmesh lab\n\n"
        "Measured on {} (Linux {}, {} CPUs, load average {:.1f} as it started) "
        "by\n\n```sh\n{}\n```\n\n"
        "which builds its own lab, measures, removes the lab and writes this file, the chart "
        "and the raw data (`{}`). `calcmesh lab bench --from {}` renders them again without "
        "measuring.\n\n",
        env.at("date").get<std::string>(), env.at("kernel").get<std::string>(),
        env.at("cpus").get<int>(), env.value("load_average", NAN),
        data.value("command", std::string("calcmesh lab bench")),
        fs::path(report_path).replace_extension(".json").filename().string(),
        fs::path(report_path).replace_extension(".json").string());
    md += fmt::format(
        "## Method\n\n"
        "- Datapaths: `native` (kernel routing over the underlay), `tunnel` (kernel VXLAN, pod "
        "MTU 1450), `ebpf` (tc programs with bpf_redirect_peer and bpf_fib_lookup + "
        "bpf_redirect/bpf_redirect_neigh), `ebpf-tunnel` (the same programs with a "
        "collect-metadata VXLAN device and bpf_skb_set_tunnel_key). See `docs/lab.md`.\n"
        "- Pairs: same node (job-submitter → help-page pods on c1n1), two nodes of one cluster "
        "(addition-worker on c3an1 → subtraction-worker on c3an2), two clusters (job-submitter "
        "on c1n1 → division-worker on c3bn2).\n"
        "- TCP_RR and TCP_CRR: `lab_perf` (netperf-like, TCP_NODELAY, 1-byte messages), {} and "
        "{} timed transactions after a warm-up; TCP_STREAM: `iperf3 -t {}`, one stream.\n"
        "- Client and server are both pinned to CPU {}: on a 2-vCPU VM, a cross-CPU wake-up "
        "costs more than the whole datapath.\n"
        "- Jobs (in the first {} rounds): from the client pod, which stands for the outside "
        "world, `calcmesh bench --target submit` with the http and then the kafka mechanism, "
        "the four operations alike, 16 jobs in flight, {} s measured after 1 s of warm-up. A "
        "job crosses every cluster: job_submitter (c1) calls a worker (c3a, c3b) directly or "
        "through the broker (c2), and the worker sends its log record to log_collector (c1). "
        "The services and the load generator run unpinned, as on a node; every answer is "
        "checked.\n"
        "- {} rounds (TCP_STREAM in the first {}); each round runs every datapath once, in an "
        "order that rotates from round to round, switching the running lab between them.\n"
        "- Tables give the median over rounds; for each datapath also the median of its "
        "per-round difference from `native` (paired, so the machine's drift cancels) and in "
        "how many rounds the difference has that sign.\n\n"
        "![Median per datapath]({})\n\n",
        opts.at("rr_transactions").get<int>(), opts.at("crr_transactions").get<int>(),
        opts.at("stream_seconds").get<int>(), opts.at("cpu").get<int>(),
        opts.value("job_rounds", 0), opts.value("job_seconds", 0), opts.at("rounds").get<int>(),
        opts.at("stream_rounds").get<int>(), png.filename().string());

    md += "## Results\n\n";
    const auto load = env.value("load_average", 0.0);
    if (load > env.at("cpus").get<double>()) {
        md += fmt::format(
            "The machine was busy while this ran (load average {:.1f} on {} CPUs): other "
            "processes preempted the pinned client and server now and then. Each such pause adds "
            "tens to hundreds of microseconds to one transaction, which moves the means of "
            "TCP_CRR (few, long transactions) far more than those of TCP_RR; read TCP_CRR from "
            "this run as noise.\n\n",
            load, env.at("cpus").get<int>());
    }

    for (const auto& [workload, pairs] : in_order(table, known_workloads())) {
        const auto info = workload_info(workload);
        md += fmt::format(
            "### {}\n\nUnit: {}, {} is better. Cells: median (paired difference "
            "from native, rounds agreeing).\n\n| pair |",
            info.title[0] ? info.title : workload.c_str(), info.unit,
            info.higher_is_better ? "higher" : "lower");
        for (const auto& datapath : datapaths) {
            md += " " + datapath + " |";
        }
        md += "\n|---|";
        for (std::size_t i = 0; i < datapaths.size(); ++i) {
            md += "---|";
        }
        md += "\n";
        for (const auto& [pair, by_datapath] : in_order(*pairs, known_pairs())) {
            md += "| " + pair_title(pair) + " |";
            const auto native = by_datapath->find("native");
            for (const auto& datapath : datapaths) {
                const auto it = by_datapath->find(datapath);
                if (it == by_datapath->end()) {
                    md += " – |";
                    continue;
                }
                const auto value = median(values_of(it->second));
                if (datapath == "native" || native == by_datapath->end()) {
                    md += " " + number(value) + " |";
                    continue;
                }
                const auto p = paired(it->second, native->second);
                const auto base = median(values_of(native->second));
                md += fmt::format(" {} ({:+.2f}, {:+.0f}%, {}/{}) |", number(value),
                                  p.median_difference, 100 * p.median_difference / base, p.agreeing,
                                  p.rounds);
            }
            md += "\n";
        }
        md += "\n";
    }

    std::map<std::string, std::vector<double>> forwarded;
    for (const auto& entry : data.at("kernel_forwarded")) {
        forwarded[entry.at("datapath")].push_back(entry.at("packets").get<double>());
    }
    md +=
        "### Kernel forwarding during the measurements\n\n"
        "Packets the nodes' kernels forwarded (IpForwDatagrams, summed over all nodes) while "
        "one datapath ran its share of a round; the eBPF datapaths deliver around the kernel's "
        "forwarding, so theirs stays at 0.\n\n| datapath | median per round | max |\n"
        "|---|---|---|\n";
    for (const auto& datapath : datapaths) {
        const auto& values = forwarded[datapath];
        md += fmt::format("| {} | {:.0f} | {:.0f} |\n", datapath, median(values),
                          values.empty() ? NAN : *std::max_element(values.begin(), values.end()));
    }

    md += "\n## Against what Cilium publishes\n\n" + cilium_comparison(table) + "\n";

    fs::create_directories(fs::absolute(report_path).parent_path());
    std::ofstream(report_path) << md;
}

}  // namespace calcmesh::lab
