#include "fault.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <stdexcept>
#include <thread>

#include "lab.hpp"
#include "services.hpp"

namespace calcmesh::lab {

namespace fs = std::filesystem;

namespace {

constexpr auto kMaxDuration = std::chrono::hours(24);
constexpr auto kMaxDelay = std::chrono::milliseconds(60000);
constexpr auto kDelayerStartTimeout = std::chrono::seconds(5);

const char* kind_name(FaultKind kind) {
    switch (kind) {
        case FaultKind::partition:
            return "partition";
        case FaultKind::delay:
            return "delay";
        case FaultKind::kill:
            return "kill";
    }
    return "?";
}

std::int64_t unix_ms_now() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Fault commands read, change and write the state; the lock keeps a timer's heal and a command
// typed meanwhile from overwriting each other.
class FaultLock {
  public:
    explicit FaultLock(const std::string& lab)
        : fd_(open((lab_dir(lab) / "faults.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)) {
        if (fd_ < 0 || flock(fd_, LOCK_EX) != 0) {
            throw std::runtime_error("cannot lock the faults of lab " + lab);
        }
    }
    ~FaultLock() { close(fd_); }
    FaultLock(const FaultLock&) = delete;
    FaultLock& operator=(const FaultLock&) = delete;

  private:
    int fd_;
};

const Cluster& cluster_named(const Topology& topology, const std::string& name) {
    std::string known;
    for (const auto& cluster : topology.clusters()) {
        if (cluster.name == name) {
            return cluster;
        }
        known += (known.empty() ? "" : ", ") + cluster.name;
    }
    throw std::invalid_argument(
        fmt::format("cluster: unknown cluster '{}' (clusters: {})", name, known));
}

// The pods of a cluster, or (inside == false) every pod of the other clusters. The client stands
// for the outside world, not for a cluster, and is never cut off.
std::vector<const Pod*> pods_of(const Topology& topology, const Cluster& cluster, bool inside) {
    std::vector<const Pod*> pods;
    for (const auto& pod : topology.pods()) {
        if (pod.node.empty()) {
            continue;
        }
        if ((topology.node(pod.node).cluster_id == cluster.id) == inside) {
            pods.push_back(&pod);
        }
    }
    return pods;
}

// The pod CIDRs of a cluster's nodes, or of every other cluster's nodes, as an nft/iptables list.
std::vector<std::string> node_cidrs(const Topology& topology, const Cluster& cluster, bool inside) {
    std::vector<std::string> cidrs;
    for (const auto& node : topology.nodes()) {
        if ((node.cluster_id == cluster.id) == inside) {
            cidrs.push_back(fmt::format("{}/{}", node.pod_cidr.str(), Topology::kPodPrefixLength));
        }
    }
    return cidrs;
}

std::string join(const std::vector<std::string>& items, std::string_view separator) {
    std::string text;
    for (const auto& item : items) {
        text += (text.empty() ? "" : std::string(separator)) + item;
    }
    return text;
}

// --- partition: nftables in the pods -------------------------------------------------------
//
// A cut link drops packets silently in both directions. The drop happens on the input hook of
// every pod on either side: the pods' own stacks see every packet in every datapath, whereas the
// eBPF datapaths redirect around the nodes' netfilter hooks.

std::string partition_table(const LabFault& fault) {
    return "calcmesh_fault_" + fault.id;
}

void partition_pods(const Topology& topology, const LabFault& fault, bool make) {
    const auto& cluster = cluster_named(topology, fault.target);
    for (const bool inside : {true, false}) {
        // Inside the cluster, drop what comes from the others; outside, what comes from it.
        const auto sources = join(node_cidrs(topology, cluster, !inside), ", ");
        for (const auto* pod : pods_of(topology, cluster, inside)) {
            // `add` first makes the delete work whether or not the table was made.
            std::string script =
                fmt::format("add table inet {0}\ndelete table inet {0}\n", partition_table(fault));
            if (make) {
                script = fmt::format(
                    "table inet {} {{\n  chain input {{\n"
                    "    type filter hook input priority filter - 10; policy accept;\n"
                    "    ip saddr {{ {} }} drop\n  }}\n}}\n",
                    partition_table(fault), sources);
            }
            run_checked({"nft", "-f", "-"}, launch_options(topology, pod->name), script);
        }
    }
}

// --- delay: an NFQUEUE in each pod of the cluster, held by lab_delay ------------------------
//
// This kernel has no sch_netem (nor nft's queue expression), so the delay is made with the
// xtables NFQUEUE target: what a pod of the cluster sends to another cluster is queued, and a
// lab_delay process in the pod accepts each packet once it has waited. `--queue-bypass` lets
// packets pass undelayed whenever no lab_delay holds the queue, so a fault never blackholes.

std::string delay_chain(const LabFault& fault) {
    return "CALCMESH-DELAY-" + fault.id;
}

std::uint16_t delay_queue(const LabFault& fault) {
    return static_cast<std::uint16_t>(std::stoi(fault.id.substr(1)));
}

std::string delayer_name(const LabFault& fault, const Pod& pod) {
    return fmt::format("fault-{}-delay-{}", fault.id, pod.name);
}

bool queue_bound(const Topology& topology, const Pod& pod, std::uint16_t queue) {
    return in_netns(topology.netns(pod.name), [&] {
        // One line per bound queue, its number first.
        std::ifstream queues("/proc/thread-self/net/netfilter/nfnetlink_queue");
        std::string line;
        while (std::getline(queues, line)) {
            if (line.find_first_not_of(' ') != std::string::npos &&
                std::stoi(line) == static_cast<int>(queue)) {
                return true;
            }
        }
        return false;
    });
}

void delay_pods(const Topology& topology, LabState& state, const LabFault& fault, bool make) {
    const auto& cluster = cluster_named(topology, fault.target);
    const auto chain = delay_chain(fault);
    for (const auto* pod : pods_of(topology, cluster, true)) {
        const auto options = launch_options(topology, pod->name);
        if (!make) {
            if (run({"iptables", "-w", "-n", "-L", chain}, options).exit_code == 0) {
                run_checked(
                    {"iptables-restore", "-w", "--noflush"}, options,
                    fmt::format("*filter\n-D OUTPUT -j {0}\n-F {0}\n-X {0}\nCOMMIT\n", chain));
            }
            stop_process(state, delayer_name(fault, *pod));
            continue;
        }
        start_process(
            state, pod->name, delayer_name(fault, *pod),
            {fs::path(bin_dir()) / "lab_delay", "--queue", std::to_string(delay_queue(fault)),
             "--delay-ms", std::to_string(fault.delay_ms)},
            {});
        const auto deadline = std::chrono::steady_clock::now() + kDelayerStartTimeout;
        while (!queue_bound(topology, *pod, delay_queue(fault))) {
            if (std::chrono::steady_clock::now() > deadline) {
                throw std::runtime_error(fmt::format(
                    "lab_delay did not bind its queue in pod {}; see {}", pod->name,
                    (lab_dir(state.name) / "logs" / (delayer_name(fault, *pod) + ".log"))
                        .string()));
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        std::string rules = fmt::format("*filter\n:{} - [0:0]\n", chain);
        for (const auto& cidr : node_cidrs(topology, cluster, false)) {
            rules += fmt::format("-A {} -d {} -j NFQUEUE --queue-num {} --queue-bypass\n", chain,
                                 cidr, delay_queue(fault));
        }
        rules += fmt::format("-A OUTPUT -j {}\nCOMMIT\n", chain);
        run_checked({"iptables-restore", "-w", "--noflush"}, options, rules);
    }
}

// --- kill: SIGKILL to the service's process group --------------------------------------------

const ServiceSpec& service_named(const std::vector<ServiceSpec>& specs, const std::string& name) {
    std::string known;
    for (const auto& spec : specs) {
        if (spec.name == name) {
            return spec;
        }
        known += (known.empty() ? "" : ", ") + spec.name;
    }
    throw std::invalid_argument(
        fmt::format("service: unknown service or pod '{}' (services: {})", name, known));
}

const LabProcess* running_process(const LabState& state, const std::string& name) {
    for (const auto& process : state.processes) {
        if (process.name == name && process_start_time(process.pid) == process.start_time) {
            return &process;
        }
    }
    return nullptr;
}

void kill_service(const LabState& state, const std::string& name) {
    const auto* process = running_process(state, name);
    if (!process) {
        throw std::runtime_error(fmt::format("{} is not running", name));
    }
    // Services run in a session of their own: the group also holds a broker's JVM.
    kill(-process->pid, SIGKILL);
    for (int i = 0; i < 250; ++i) {
        waitpid(process->pid, nullptr, WNOHANG);  // reaped if it is our child
        if (process_start_time(process->pid) != process->start_time) {
            return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    throw std::runtime_error(fmt::format("{} (pid {}) did not die", name, process->pid));
}

void restart_service(const Topology& topology, LabState& state, const std::string& name,
                     std::ostream& log) {
    const auto specs = service_specs(topology);
    const auto& spec = service_named(specs, name);
    std::erase_if(state.processes, [&](const LabProcess& process) {
        return process.name == name && process_start_time(process.pid) != process.start_time;
    });
    if (!running_process(state, name)) {
        start_service(topology, state, spec, log);
    }
}

// --- the timer of `--for` --------------------------------------------------------------------

std::string timer_name(const LabFault& fault) {
    return "fault-" + fault.id + "-timer";
}

void start_timer(LabState& state, const LabFault& fault, std::chrono::milliseconds after) {
    LaunchOptions options;
    fs::create_directories(lab_dir(state.name) / "logs");
    options.log_file = (lab_dir(state.name) / "logs" / (timer_name(fault) + ".log")).string();
    const auto pid = spawn({fs::path(bin_dir()) / "calcmesh", "lab", "fault", "heal", "--name",
                            state.name, fault.id, "--after", std::to_string(after.count()) + "ms"},
                           options);
    state.processes.push_back({"", timer_name(fault), pid, process_start_time(pid)});
    save_state(state);
}

// A timer healing its own fault forgets itself; anyone else healing the fault ends the timer.
void end_timer(LabState& state, const LabFault& fault) {
    std::erase_if(state.processes, [&](const LabProcess& process) {
        if (process.name != timer_name(fault)) {
            return false;
        }
        if (process.pid != getpid()) {
            terminate(process.pid, process.start_time);
        }
        return true;
    });
}

// --- making and undoing ----------------------------------------------------------------------

void undo(const Topology& topology, LabState& state, const LabFault& fault, std::ostream& log) {
    if (fault.kind == kind_name(FaultKind::partition)) {
        partition_pods(topology, fault, false);
    } else if (fault.kind == kind_name(FaultKind::delay)) {
        delay_pods(topology, state, fault, false);
    } else {
        restart_service(topology, state, fault.target, log);
    }
    end_timer(state, fault);
}

void make(const Topology& topology, LabState& state, const LabFault& fault) {
    if (fault.kind == kind_name(FaultKind::partition)) {
        partition_pods(topology, fault, true);
    } else if (fault.kind == kind_name(FaultKind::delay)) {
        delay_pods(topology, state, fault, true);
    } else {
        kill_service(state, fault.target);
    }
}

// Everything that can be wrong with a request, checked before anything changes.
void check_request(const Topology& topology, const LabState& state, const FaultRequest& request) {
    if (request.duration < std::chrono::milliseconds(0) || request.duration > kMaxDuration) {
        throw std::invalid_argument("--for: must be positive and at most 24h");
    }
    if (request.kind == FaultKind::kill) {
        const auto specs = service_specs(topology);
        service_named(specs, request.target);
    } else {
        cluster_named(topology, request.target);
    }
    if (request.kind == FaultKind::delay &&
        (request.delay <= std::chrono::milliseconds(0) || request.delay > kMaxDelay)) {
        throw std::invalid_argument(fmt::format("delay: {} ms is out of range (1 to {} ms)",
                                                request.delay.count(), kMaxDelay.count()));
    }
    for (const auto& fault : state.faults) {
        if (fault.kind == kind_name(request.kind) && fault.target == request.target) {
            throw std::invalid_argument(
                fmt::format("{} {} is in force already (fault {}; heal it first: calcmesh lab "
                            "fault heal {})",
                            fault.kind, fault.target, fault.id, fault.id));
        }
    }
    if (request.kind == FaultKind::kill && !running_process(state, request.target)) {
        throw std::invalid_argument(fmt::format(
            "service: {} does not run in lab {} (a lab built with --no-services runs none)",
            request.target, state.name));
    }
}

std::string clock_time(std::int64_t unix_ms) {
    const auto seconds = static_cast<time_t>(unix_ms / 1000);
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    return fmt::format("{:02}:{:02}:{:02}Z", utc.tm_hour, utc.tm_min, utc.tm_sec);
}

}  // namespace

std::chrono::milliseconds parse_duration(std::string_view text, std::string_view argument) {
    long long value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    const std::string_view unit(end, text.data() + text.size() - end);
    const long long scale = unit.empty() || unit == "ms" ? 1
                            : unit == "s"                ? 1000
                            : unit == "m"                ? 60000
                                                         : 0;
    const auto most = std::chrono::milliseconds(kMaxDuration).count();
    if (error != std::errc() || scale == 0 || value <= 0 || value > most / scale) {
        throw std::invalid_argument(fmt::format(
            "{}: '{}' is not a duration (a positive whole number of ms, s or m, at most 24h, "
            "e.g. 250ms, 10s, 2m)",
            argument, text));
    }
    return std::chrono::milliseconds(value * scale);
}

LabFault add_fault(const std::string& lab, const FaultRequest& request, std::ostream& log) {
    require_lab(lab);
    FaultLock lock(lab);
    auto state = require_lab(lab);
    const Topology topology(lab);
    check_request(topology, state, request);

    LabFault fault{fmt::format("f{}", ++state.faults_made), kind_name(request.kind), request.target,
                   static_cast<int>(request.delay.count()), unix_ms_now(),           0};
    if (request.duration.count() > 0) {
        fault.heals_at_unix_ms = fault.since_unix_ms + request.duration.count();
    }
    // Recorded before it is made, so that a crash half-way leaves something to heal.
    state.faults.push_back(fault);
    save_state(state);
    try {
        make(topology, state, fault);
        if (request.duration.count() > 0) {
            start_timer(state, fault, request.duration);
        }
    } catch (...) {
        undo(topology, state, fault, log);
        std::erase_if(state.faults, [&](const LabFault& f) { return f.id == fault.id; });
        save_state(state);
        throw;
    }
    save_state(state);
    return fault;
}

std::vector<LabFault> heal_faults(const std::string& lab, const std::vector<std::string>& ids,
                                  bool missing_ok, std::ostream& log) {
    require_lab(lab);
    FaultLock lock(lab);
    auto state = require_lab(lab);
    const Topology topology(lab);
    std::vector<LabFault> healing;
    for (const auto& fault : state.faults) {
        if (ids.empty() || std::find(ids.begin(), ids.end(), fault.id) != ids.end()) {
            healing.push_back(fault);
        }
    }
    for (const auto& id : ids) {
        const bool known = std::any_of(healing.begin(), healing.end(),
                                       [&](const LabFault& fault) { return fault.id == id; });
        if (!known && !missing_ok) {
            std::string active;
            for (const auto& fault : state.faults) {
                active += (active.empty() ? "" : ", ") + fault.id;
            }
            throw std::invalid_argument(fmt::format("fault: no fault '{}' in lab {} (active: {})",
                                                    id, lab, active.empty() ? "none" : active));
        }
    }
    for (const auto& fault : healing) {
        undo(topology, state, fault, log);
        std::erase_if(state.faults, [&](const LabFault& f) { return f.id == fault.id; });
        save_state(state);
        log << fmt::format("lab {}: healed {} ({} {})\n", lab, fault.id, fault.kind, fault.target);
    }
    return healing;
}

void print_faults(const LabState& state, std::ostream& out) {
    if (state.faults.empty()) {
        out << fmt::format("lab {}: no faults\n", state.name);
        return;
    }
    out << fmt::format("lab {}: {} fault(s)\n", state.name, state.faults.size());
    for (const auto& fault : state.faults) {
        const auto what = fault.kind == kind_name(FaultKind::delay)
                              ? fmt::format("{} {} {} ms", fault.kind, fault.target, fault.delay_ms)
                              : fmt::format("{} {}", fault.kind, fault.target);
        const auto until = fault.heals_at_unix_ms == 0
                               ? std::string("until healed")
                               : fmt::format("heals at {}", clock_time(fault.heals_at_unix_ms));
        out << fmt::format("  {:<4} {:<36} since {}  {}\n", fault.id, what,
                           clock_time(fault.since_unix_ms), until);
    }
}

}  // namespace calcmesh::lab
