// The collector's socket speaks JSON lines: the client sends one request line, the collector
// answers with lines and closes (or keeps sending, when following):
//   {"flows": {"last": N, "follow": true|false, "filter": {...}}}  -> Hubble flow JSON lines
//   {"map": {}}     -> the service map
//   {"status": {}}  -> counters of the store and of every node's flow stage
//   {"reload": {}}  -> reads the policy in force again (after `calcmesh lab policy apply`)
// A failed request gets {"error": "..."}.
#include "collector.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "calcmesh/lab/flows.hpp"
#include "calcmesh/lab/lab.hpp"
#include "calcmesh/process.hpp"
#include "decoder.hpp"
#include "lab_policy.hpp"
#include "socket_io.hpp"
#include "store.hpp"

namespace calcmesh::observe {

namespace {

constexpr auto kPollTimeout = std::chrono::milliseconds(200);
constexpr auto kCounterInterval = std::chrono::seconds(1);
constexpr auto kFollowWait = std::chrono::milliseconds(500);
constexpr std::size_t kDefaultLast = 20;

std::atomic<bool> stopping{false};

void request_stop(int) {
    stopping = true;
}

std::int64_t clock_ns(clockid_t clock) {
    timespec now{};
    clock_gettime(clock, &now);
    return static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

// Unix time minus the monotonic clock the BPF programs stamp events with.
std::int64_t monotonic_to_unix() {
    return clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_MONOTONIC);
}

ServiceMap initial_map(const lab::Topology& topology) {
    std::vector<MapService> services;
    const lab::Identities identities(topology);
    for (const auto& pod : identities.pods()) {
        services.push_back({pod.cluster + "/" + pod.pod, pod.pod, pod.cluster,
                            pod.labels.at("app.kubernetes.io/component")});
    }
    std::map<std::uint16_t, std::string> l7_ports;
    for (const auto& spec : lab::service_specs(topology)) {
        l7_ports[static_cast<std::uint16_t>(spec.port)] = spec.name == "kafka" ? "kafka" : "http";
    }
    return ServiceMap(std::move(services), std::move(l7_ports));
}

class Collector {
  public:
    Collector(const CollectorOptions& options)
        : topology_(options.lab),
          decoder_(topology_),
          store_(options.capacity, initial_map(topology_)) {
        reload_policy();
    }

    ~Collector() {
        ring_buffer__free(ring_);
        if (listener_ >= 0) {
            close(listener_);
        }
        std::error_code error;
        std::filesystem::remove(lab::observer_socket(topology_.lab_name()), error);
    }

    void run() {
        open_ring_buffers();
        listen_socket();
        std::thread server([this] { accept_loop(); });
        auto next_check = std::chrono::steady_clock::now();
        while (!stopping) {
            const int rc = ring_buffer__poll(ring_, static_cast<int>(kPollTimeout.count()));
            if (rc < 0 && rc != -EINTR) {
                throw std::runtime_error(fmt::format("ring buffer: {}", std::strerror(-rc)));
            }
            // One round drains every node's ring buffer; in time order the nodes' flows mix.
            std::stable_sort(batch_.begin(), batch_.end(),
                             [](const Flow& a, const Flow& b) { return a.time_ns < b.time_ns; });
            for (auto& flow : batch_) {
                store_.add(std::move(flow));
            }
            batch_.clear();
            if (std::chrono::steady_clock::now() >= next_check) {
                clock_offset_ = monotonic_to_unix();
                report_losses();
                next_check += kCounterInterval;
            }
        }
        server.join();
        // Followers notice `stopping` within one wait; the store must outlive them.
        for (int i = 0; i < 40 && clients_ > 0; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }

  private:
    struct NodeSource {
        Collector* collector;
        const lab::Node* node;
        std::map<std::uint32_t, std::string> interfaces;
        std::uint64_t lost = 0;
    };

    static int on_event(void* context, void* data, std::size_t size) {
        auto* source = static_cast<NodeSource*>(context);
        source->collector->handle(*source, {static_cast<const std::uint8_t*>(data), size});
        return 0;
    }

    void handle(NodeSource& source, std::span<const std::uint8_t> raw) {
        flow_event head;
        if (raw.size() < sizeof(head)) {
            return;
        }
        std::memcpy(&head, raw.data(), sizeof(head));
        std::optional<Flow> flow;
        {
            std::lock_guard lock(decoder_mutex_);
            flow = decoder_.decode(*source.node, raw, clock_offset_,
                                   interface_name(source, head.ifindex));
        }
        if (flow) {
            batch_.push_back(std::move(*flow));
        }
    }

    // Devices come and go with the datapath (VXLAN devices), so a miss reads the names again.
    std::string interface_name(NodeSource& source, std::uint32_t ifindex) {
        if (const auto found = source.interfaces.find(ifindex); found != source.interfaces.end()) {
            return found->second;
        }
        source.interfaces = in_netns(topology_.netns(source.node->name), [] {
            std::map<std::uint32_t, std::string> names;
            if (auto* list = if_nameindex()) {
                for (auto* entry = list; entry->if_index != 0; ++entry) {
                    names[entry->if_index] = entry->if_name;
                }
                if_freenameindex(list);
            }
            return names;
        });
        return source.interfaces[ifindex];
    }

    void open_ring_buffers() {
        sources_.reserve(topology_.nodes().size());
        for (const auto& node : topology_.nodes()) {
            const auto path = lab::node_pin_dir(topology_, node) + "/flow_events";
            const int fd = bpf_obj_get(path.c_str());
            if (fd < 0) {
                throw std::runtime_error(fmt::format("{}: {} (is the lab up with its flow stage?)",
                                                     path, std::strerror(errno)));
            }
            sources_.push_back({this, &node, {}, 0});
            auto* context = &sources_.back();
            const int rc =
                ring_ == nullptr
                    ? ((ring_ = ring_buffer__new(fd, on_event, context, nullptr)) ? 0 : -errno)
                    : ring_buffer__add(ring_, fd, on_event, context);
            close(fd);
            if (rc < 0) {
                throw std::runtime_error(fmt::format("{}: {}", path, std::strerror(-rc)));
            }
        }
    }

    // Events the full ring buffers refused, per node, as Hubble reports lost events.
    void report_losses() {
        for (auto& source : sources_) {
            const auto counters =
                lab::read_flow_counters(lab::node_pin_dir(topology_, *source.node));
            if (counters[FLOW_LOST] <= source.lost) {
                continue;
            }
            store_.add(LostEvents{
                clock_ns(CLOCK_REALTIME),
                topology_.cluster(source.node->cluster_id).name + "/" + source.node->name,
                "PERF_EVENT_RING_BUFFER", counters[FLOW_LOST] - source.lost});
            source.lost = counters[FLOW_LOST];
        }
    }

    void reload_policy() {
        auto applied = load_applied_policy(topology_);
        std::lock_guard lock(decoder_mutex_);
        policy_ = std::move(applied);
        decoder_.set_policy(policy_.rules, policy_.audit.get());
    }

    void listen_socket() {
        const auto path = lab::observer_socket(topology_.lab_name()).string();
        listener_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        if (listener_ < 0 || path.size() >= sizeof(address.sun_path)) {
            throw std::runtime_error("cannot make the socket " + path);
        }
        std::strcpy(address.sun_path, path.c_str());
        unlink(path.c_str());
        // Only root may read the lab's flows, as only root may run the lab.
        const auto mask = umask(0077);
        const int rc = bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof(address));
        umask(mask);
        if (rc != 0 || listen(listener_, 16) != 0) {
            throw std::runtime_error(fmt::format("{}: {}", path, std::strerror(errno)));
        }
    }

    void accept_loop() {
        while (!stopping) {
            pollfd ready{listener_, POLLIN, 0};
            if (poll(&ready, 1, static_cast<int>(kPollTimeout.count())) <= 0) {
                continue;
            }
            const int client = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
            if (client >= 0) {
                std::thread([this, client] { serve(client); }).detach();
            }
        }
    }

    void serve(int fd) {
        ++clients_;
        struct Done {
            std::atomic<int>& clients;
            ~Done() { --clients; }
        } done{clients_};
        LineSocket socket(fd);
        try {
            const auto line = socket.read_line();
            if (!line) {
                return;
            }
            answer(socket, nlohmann::json::parse(*line));
        } catch (const std::exception& error) {
            socket.write_line(nlohmann::json{{"error", error.what()}}.dump());
        }
    }

    void answer(LineSocket& socket, const nlohmann::json& request) {
        if (request.contains("flows")) {
            send_flows(socket, request["flows"]);
        } else if (request.contains("map")) {
            socket.write_line(store_.service_map().to_json().dump());
        } else if (request.contains("status")) {
            socket.write_line(status().dump());
        } else if (request.contains("reload")) {
            reload_policy();
            socket.write_line(R"({"reloaded":true})");
        } else {
            throw std::invalid_argument("unknown request: use flows, map, status or reload");
        }
    }

    void send_flows(LineSocket& socket, const nlohmann::json& request) {
        const auto filter = filter_from_json(request.value("filter", nlohmann::json::object()));
        const bool follow = request.value("follow", false);
        const auto count = request.value("last", follow ? std::size_t{0} : kDefaultLast);
        auto [entries, next] = store_.last(filter, count);
        if (!send(socket, entries)) {
            return;
        }
        while (follow && !stopping && socket.open()) {
            auto batch = store_.after(next, filter, kFollowWait);
            if (batch.missed > 0) {
                // The follower fell behind the bounded buffer: say so, as Hubble does.
                const LostEvents lost{clock_ns(CLOCK_REALTIME), "", "HUBBLE_RING_BUFFER",
                                      batch.missed};
                if (!socket.write_line(to_json(lost).dump())) {
                    return;
                }
            }
            if (!send(socket, batch.entries)) {
                return;
            }
            next = batch.next;
        }
    }

    static bool send(LineSocket& socket, const std::vector<FlowStore::Entry>& entries) {
        for (const auto& entry : entries) {
            const auto json =
                std::visit([](const auto& event) { return to_json(event); }, entry.event);
            if (!socket.write_line(json.dump())) {
                return false;
            }
        }
        return true;
    }

    nlohmann::json status() {
        const auto store = store_.status();
        std::size_t policy_files = 0;
        {
            std::lock_guard lock(decoder_mutex_);
            policy_files = policy_.files.size();
        }
        nlohmann::json nodes = nlohmann::json::array();
        for (const auto& node : topology_.nodes()) {
            const auto counters = lab::read_flow_counters(lab::node_pin_dir(topology_, node));
            nodes.push_back({{"node", topology_.cluster(node.cluster_id).name + "/" + node.name},
                             {"events", counters[FLOW_EVENTS]},
                             {"lost", counters[FLOW_LOST]},
                             {"connections", counters[FLOW_NEW]},
                             {"policy_drops", counters[FLOW_DROPPED_POLICY]}});
        }
        return {{"flows_seen", store.seen},     {"flows_stored", store.stored},
                {"capacity", store.capacity},   {"events_lost", store.lost},
                {"policy_files", policy_files}, {"nodes", nodes}};
    }

    const lab::Topology topology_;
    std::mutex decoder_mutex_;
    Decoder decoder_;
    AppliedPolicy policy_;
    FlowStore store_;
    std::vector<NodeSource> sources_;
    std::vector<Flow> batch_;
    ring_buffer* ring_ = nullptr;
    int listener_ = -1;
    std::atomic<int> clients_{0};
    std::int64_t clock_offset_ = monotonic_to_unix();
};

}  // namespace

int run_collector(const CollectorOptions& options) {
    struct sigaction action {};
    action.sa_handler = request_stop;
    sigaction(SIGTERM, &action, nullptr);
    sigaction(SIGINT, &action, nullptr);
    Collector collector(options);
    collector.run();
    std::cerr << "flow collector of lab " << options.lab << " stopped\n";
    return 0;
}

}  // namespace calcmesh::observe
