#include "lab.hpp"

#include <fmt/format.h>
#include <fmt/ostream.h>
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <ostream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "bpf_datapath.hpp"
#include "fault.hpp"
#include "flow_stage.hpp"
#include "services.hpp"

namespace calcmesh::lab {

namespace fs = std::filesystem;

namespace {

void require_root() {
    if (geteuid() != 0) {
        throw std::runtime_error(
            "calcmesh lab needs root (CAP_NET_ADMIN and CAP_BPF) to make namespaces and load BPF");
    }
}

fs::path hosts_path(const std::string& name) {
    return lab_dir(name) / "hosts";
}

// Shared by all labs: the first one up mounts bpffs if the machine has none, the last one down
// unmounts it again.
std::string bpffs_marker() {
    return (run_root() / "bpffs-mounted").string();
}

constexpr const char* kNetnsDir = "/run/netns";

// `ip netns add` turns /run/netns into a shared bind mount of itself the first time it runs.
// If the lab caused that, the last lab down undoes it, so the machine's mounts stay as they were.
fs::path netns_marker() {
    return run_root() / "netns-mounted";
}

bool is_mount_point(const std::string& path) {
    std::ifstream mountinfo("/proc/self/mountinfo");
    std::string line;
    while (std::getline(mountinfo, line)) {
        std::istringstream fields(line);
        std::string id, parent, device, root, mount_point;
        if (fields >> id >> parent >> device >> root >> mount_point && mount_point == path) {
            return true;
        }
    }
    return false;
}

void note_netns_mount() {
    if (is_mount_point(kNetnsDir) || fs::exists(netns_marker())) {
        return;
    }
    fs::create_directories(run_root());
    std::ofstream(netns_marker()) << "calcmesh lab made " << kNetnsDir << " a mount point\n";
}

void release_netns_mount() {
    std::error_code error;
    if (!fs::exists(netns_marker(), error) || !fs::is_empty(kNetnsDir, error) || error) {
        return;
    }
    if (umount2(kNetnsDir, MNT_DETACH) == 0) {
        fs::remove(netns_marker(), error);
    }
}

// Ends every process whose network namespace is one of the lab's: those recorded in the state,
// and any started with `lab exec` that still runs. Namespaces are only freed once they are empty.
void end_processes(const LabState& state, std::ostream& log) {
    for (const auto& process : state.processes) {
        if (!terminate(process.pid, process.start_time)) {
            log << fmt::format("could not end {} (pid {})\n", process.name, process.pid);
        }
    }
    std::set<std::uint64_t> inodes;
    for (const auto& netns : state.namespaces) {
        if (const auto inode = netns_inode("/run/netns/" + netns)) {
            inodes.insert(inode);
        }
    }
    std::error_code error;
    for (const auto& entry : fs::directory_iterator("/proc", error)) {
        const auto pid_text = entry.path().filename().string();
        if (pid_text.find_first_not_of("0123456789") != std::string::npos) {
            continue;
        }
        const auto pid = static_cast<pid_t>(std::stol(pid_text));
        if (pid == getpid()) {
            continue;
        }
        if (!inodes.contains(netns_inode(entry.path() / "ns" / "net"))) {
            continue;
        }
        const auto start = process_start_time(pid);
        if (start != 0 && terminate(pid, start)) {
            log << fmt::format("ended pid {} left in the lab\n", pid);
        }
    }
}

// The collector reads every node's ring buffer and serves flows on a unix socket. It runs in the
// underlay namespace, where it can reach nothing but the lab, and `down` ends it with the rest.
void start_collector(LabState& state, std::ostream& log) {
    const auto socket = observer_socket(state.name);
    start_process(state, std::string(Topology::kUnderlay), "observer",
                  {fs::path(bin_dir()) / "calcmesh", "observe", "collector", "--name", state.name},
                  {});
    const auto& process = state.processes.back();
    for (int i = 0; i < 100 && !fs::exists(socket); ++i) {
        if (process_start_time(process.pid) != process.start_time) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!fs::exists(socket)) {
        throw std::runtime_error(
            fmt::format("the flow collector did not start; see {}",
                        (lab_dir(state.name) / "logs" / "observer.log").string()));
    }
    log << fmt::format("lab {}: flow collector on {}\n", state.name, socket.string());
}

void remove_if_empty(const fs::path& dir) {
    std::error_code error;
    if (fs::is_directory(dir, error) && fs::is_empty(dir, error)) {
        fs::remove(dir, error);
    }
}

}  // namespace

std::string bin_dir() {
    return fs::read_symlink("/proc/self/exe").parent_path().string();
}

LabState require_lab(const std::string& name) {
    auto state = load_state(name);
    if (!state) {
        throw std::runtime_error(fmt::format(
            "no lab named '{}' (start one with: calcmesh lab up --name {})", name, name));
    }
    return *state;
}

Topology running_lab(const std::string& name) {
    require_lab(name);
    return Topology(name);
}

std::optional<pid_t> lab_process(const std::string& lab, const std::string& name) {
    for (const auto& process : require_lab(lab).processes) {
        if (process.name == name) {
            return process.pid;
        }
    }
    return std::nullopt;
}

void lab_up(const UpOptions& options, std::ostream& log) {
    const Topology topology(options.name);
    require_root();
    if (load_state(options.name)) {
        throw std::runtime_error(
            fmt::format("lab '{}' exists already (remove it with: calcmesh lab down --name {})",
                        options.name, options.name));
    }
    for (const auto& netns : topology.all_netns()) {
        if (fs::exists("/run/netns/" + netns)) {
            throw std::runtime_error(fmt::format(
                "network namespace {} exists but belongs to no lab; pick another --name", netns));
        }
    }
    LabState state{options.name, "", topology.all_netns(), pin_dir(options.name).string(), {}};
    save_state(state);
    note_netns_mount();
    try {
        ensure_bpffs(bpffs_marker());
        std::ofstream(hosts_path(options.name)) << topology.hosts_file();
        log << fmt::format("lab {}: building {} namespaces\n", options.name,
                           state.namespaces.size());
        build_network(topology);
        log << fmt::format("lab {}: datapath {}\n", options.name, to_string(options.datapath));
        apply_datapath(topology, std::nullopt, options.datapath);
        state.datapath = to_string(options.datapath);
        if (options.observe) {
            attach_flow_stage(topology, options.datapath);
            state.observe = true;
            start_collector(state, log);
        }
        save_state(state);
        if (options.services) {
            start_services(topology, state, log);
        }
    } catch (...) {
        log << fmt::format("lab {}: failed, removing what was made\n", options.name);
        lab_down(options.name, log);
        throw;
    }
}

bool lab_down(const std::string& name, std::ostream& log) {
    require_root();
    const auto state = load_state(name);
    if (!state) {
        return false;
    }
    end_processes(*state, log);
    for (const auto& netns : state->namespaces) {
        if (fs::exists("/run/netns/" + netns)) {
            run_checked({"ip", "netns", "delete", netns});
        }
    }
    std::error_code error;
    fs::remove_all(state->pin_dir, error);
    if (error) {
        log << fmt::format("cannot remove {}: {}\n", state->pin_dir, error.message());
    }
    remove_if_empty(fs::path(state->pin_dir).parent_path());
    release_bpffs(bpffs_marker());
    release_netns_mount();
    fs::remove_all(lab_dir(name));
    remove_if_empty(run_root());
    return true;
}

void lab_switch(const std::string& name, Datapath to) {
    require_root();
    auto state = require_lab(name);
    const Topology topology(name);
    std::optional<Datapath> from;
    if (!state.datapath.empty()) {
        from = parse_datapath(state.datapath);
    }
    // Recorded as unknown while switching: a failure half-way leaves no false claim behind.
    state.datapath.clear();
    save_state(state);
    apply_datapath(topology, from, to);
    // The flow stage stays on the devices that survive a switch; VXLAN devices are new.
    if (state.observe) {
        attach_flow_stage(topology, to);
    }
    state.datapath = to_string(to);
    save_state(state);
}

ChildProcess::Options launch_in(const Topology& topology, const std::string& target,
                                std::vector<std::string> argv) {
    ChildProcess::Options options;
    options.argv = std::move(argv);
    options.netns = topology.netns_of(target);
    options.hosts_file = hosts_path(topology.lab_name()).string();
    return options;
}

LaunchOptions launch_options(const Topology& topology, const std::string& target) {
    auto placed = launch_in(topology, target, {});
    LaunchOptions options;
    options.netns = std::move(placed.netns);
    options.hosts_file = std::move(placed.hosts_file);
    return options;
}

pid_t start_process(LabState& state, const std::string& pod, const std::string& name,
                    const std::vector<std::string>& argv, LaunchOptions options) {
    const Topology topology(state.name);
    const auto defaults = launch_options(topology, pod);
    options.netns = defaults.netns;
    options.hosts_file = defaults.hosts_file;
    if (options.log_file.empty()) {
        fs::create_directories(lab_dir(state.name) / "logs");
        options.log_file = (lab_dir(state.name) / "logs" / (name + ".log")).string();
    }
    const auto pid = spawn(argv, options);
    state.processes.push_back({pod, name, pid, process_start_time(pid)});
    save_state(state);
    return pid;
}

void stop_process(LabState& state, const std::string& name) {
    std::erase_if(state.processes, [&](const LabProcess& process) {
        if (process.name != name) {
            return false;
        }
        terminate(process.pid, process.start_time);
        return true;
    });
    save_state(state);
}

int lab_exec(const std::string& name, const std::string& target,
             const std::vector<std::string>& argv) {
    require_root();
    require_lab(name);
    return run_attached(argv, launch_options(Topology(name), target));
}

void print_status(const std::string& name, std::ostream& out) {
    const auto state = require_lab(name);
    const Topology topology(name);
    out << fmt::format("lab {}  datapath {}  ({} namespaces, BPF pins in {})\n", name,
                       state.datapath.empty() ? "unknown (a switch failed)" : state.datapath,
                       state.namespaces.size(), state.pin_dir);
    if (!state.faults.empty()) {
        print_faults(state, out);
    }
    const auto process_of = [&](const std::string& pod) {
        std::string text;
        for (const auto& process : state.processes) {
            if (process.pod != pod) {
                continue;
            }
            const bool alive = process_start_time(process.pid) == process.start_time;
            text += fmt::format("  {} pid {} {}", process.name, process.pid,
                                alive ? "running" : "EXITED");
        }
        return text;
    };
    for (const auto& cluster : topology.clusters()) {
        out << fmt::format("cluster {}\n", cluster.name);
        for (const auto& node : topology.nodes()) {
            if (node.cluster_id != cluster.id) {
                continue;
            }
            out << fmt::format(
                "  node {:<6} netns {:<14} underlay {:<13} pods {}/{}  router {}  "
                "kernel-forwarded {}\n",
                node.name, topology.netns(node.name), node.underlay_ip.str(), node.pod_cidr.str(),
                Topology::kPodPrefixLength, node.router_ip.str(),
                kernel_forwarded(topology.netns(node.name)));
            for (const auto* pod : topology.pods_on(node)) {
                out << fmt::format("    pod {:<22} {:<13} via {:<9}{}\n", pod->name, pod->ip.str(),
                                   pod->device, process_of(pod->name));
            }
        }
    }
    const auto& client = topology.pod(Topology::kClientPod);
    out << fmt::format("outside\n  pod {:<26} {:<13} on the underlay{}\n", client.name,
                       client.ip.str(), process_of(client.name));
    out << "eBPF path counters (packets since the lab started):\n";
    for (const auto& node : topology.nodes()) {
        const auto counters = read_path_counters(node_pin_dir(topology, node));
        std::string line;
        for (int path = 0; path < PATH_COUNT; ++path) {
            if (counters[path].packets != 0) {
                line += fmt::format(" {}={}", path_name(path), counters[path].packets);
            }
        }
        out << fmt::format("  {:<6}{}\n", node.name, line.empty() ? " -" : line);
    }
    if (!state.observe) {
        return;
    }
    out << "flow stage counters (since the lab started; lost events are also shown by "
           "`calcmesh observe`):\n";
    for (const auto& node : topology.nodes()) {
        const auto counters = read_flow_counters(node_pin_dir(topology, node));
        out << fmt::format("  {:<6} events={} lost={} connections={} policy_drops={}\n", node.name,
                           counters[FLOW_EVENTS], counters[FLOW_LOST], counters[FLOW_NEW],
                           counters[FLOW_DROPPED_POLICY]);
    }
}

}  // namespace calcmesh::lab
