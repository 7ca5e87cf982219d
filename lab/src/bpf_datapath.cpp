#include "bpf_datapath.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <net/if.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "process.hpp"
#include "router.skel.h"

namespace calcmesh::lab {

namespace {

constexpr long kBpfFsMagic = 0xcafe4a11;
constexpr const char* kBpfFsRoot = "/sys/fs/bpf";

// libbpf's warnings go to stderr, except the one for an existing clsact qdisc, which is expected.
int print_libbpf(enum libbpf_print_level level, const char* format, va_list args) {
    if (level != LIBBPF_WARN) {
        return 0;
    }
    char line[1024];
    vsnprintf(line, sizeof(line), format, args);
    if (std::strstr(line, "Exclusivity flag on") != nullptr) {
        return 0;
    }
    return std::fputs(line, stderr);
}

const bool kPrintInstalled = [] {
    libbpf_set_print(print_libbpf);
    return true;
}();

int ifindex_of(const std::string& device) {
    const auto index = if_nametoindex(device.c_str());
    if (index == 0) {
        throw std::runtime_error(fmt::format("no device {}", device));
    }
    return static_cast<int>(index);
}

void parse_mac(const std::string& text, __u8 (&mac)[6]) {
    const auto malformed = [&text] {
        return std::invalid_argument(fmt::format("not a MAC address: '{}'", text));
    };
    const char* at = text.c_str();
    const char* const end = at + text.size();
    for (std::size_t i = 0; i < std::size(mac); ++i) {
        if (i > 0) {
            if (at == end || *at != ':') {
                throw malformed();
            }
            ++at;
        }
        const auto [next, error] = std::from_chars(at, end, mac[i], 16);
        if (error != std::errc() || next - at != 2) {
            throw malformed();
        }
        at = next;
    }
    if (at != end) {
        throw malformed();
    }
}

void check(int rc, const std::string& what) {
    if (rc < 0) {
        throw std::runtime_error(fmt::format("{}: {}", what, std::strerror(-rc)));
    }
}

bpf_tc_hook ingress_hook(int ifindex) {
    return bpf_tc_hook{
        .sz = sizeof(bpf_tc_hook), .ifindex = ifindex, .attach_point = BPF_TC_INGRESS};
}

bpf_tc_opts filter_opts(std::uint32_t priority, int prog_fd) {
    bpf_tc_opts opts{};
    opts.sz = sizeof(opts);
    opts.handle = priority;
    opts.priority = priority;
    opts.prog_fd = prog_fd;
    return opts;
}

constexpr Hook kHooks[] = {Hook::container, Hook::netdev, Hook::overlay};

}  // namespace

std::vector<std::string> NodeHooks::devices(Hook hook) const {
    switch (hook) {
        case Hook::container:
            return container_devices;
        case Hook::netdev:
            return {netdev};
        case Hook::overlay:
            return overlay.empty() ? std::vector<std::string>{} : std::vector{overlay};
    }
    return {};
}

struct RouterStage::Skeleton {
    router_bpf* skel = nullptr;
    ~Skeleton() { router_bpf__destroy(skel); }
};

RouterStage::RouterStage(const Topology& topology, const Node& node)
    : topology_(topology), node_(node), skeleton_(std::make_unique<Skeleton>()) {}

RouterStage::~RouterStage() = default;

void RouterStage::load(const NodeHooks& node) {
    std::filesystem::create_directories(node.pin_dir);
    bpf_object_open_opts opts{};
    opts.sz = sizeof(opts);
    opts.pin_root_path = node.pin_dir.c_str();
    skeleton_->skel = router_bpf__open_opts(&opts);
    if (skeleton_->skel == nullptr) {
        throw std::runtime_error(fmt::format("open router BPF object: {}", std::strerror(errno)));
    }
    auto* skel = skeleton_->skel;
    const auto pods = topology_.pods_on(node_);
    std::vector<int> pod_ifindexes;
    in_netns(node.netns, [&] {
        skel->rodata->overlay_ifindex = node.overlay.empty() ? 0 : ifindex_of(node.overlay);
        for (const auto* pod : pods) {
            pod_ifindexes.push_back(ifindex_of(pod->device));
        }
    });
    check(router_bpf__load(skel), fmt::format("load router BPF programs for {}", node_.name));

    const int endpoints = bpf_map__fd(skel->maps.endpoints);
    for (std::size_t i = 0; i < pods.size(); ++i) {
        endpoint_info info{};
        info.ifindex = static_cast<__u32>(pod_ifindexes[i]);
        parse_mac(pod_mac(*pods[i]), info.pod_mac);
        parse_mac(lxc_mac(*pods[i]), info.node_mac);
        const __u32 key = pods[i]->ip.network_order();
        check(bpf_map_update_elem(endpoints, &key, &info, BPF_ANY), "update endpoints map");
    }
    const int tunnels = bpf_map__fd(skel->maps.tunnels);
    for (const auto& other : topology_.nodes()) {
        if (other.name == node_.name) {
            continue;
        }
        tunnel_prefix key{Topology::kPodPrefixLength, other.pod_cidr.network_order()};
        tunnel_info value{other.underlay_ip.value, Topology::kVni};
        check(bpf_map_update_elem(tunnels, &key, &value, BPF_ANY), "update tunnels map");
    }
}

int RouterStage::program_fd(Hook hook) const {
    auto* skel = skeleton_->skel;
    switch (hook) {
        case Hook::container:
            return bpf_program__fd(skel->progs.from_container);
        case Hook::netdev:
            return bpf_program__fd(skel->progs.from_netdev);
        case Hook::overlay:
            return bpf_program__fd(skel->progs.from_overlay);
    }
    return -1;
}

void attach_stage(const NodeHooks& node, const Stage& stage) {
    in_netns(node.netns, [&] {
        for (const auto hook : kHooks) {
            const int prog_fd = stage.program_fd(hook);
            if (prog_fd < 0) {
                continue;
            }
            for (const auto& device : node.devices(hook)) {
                auto tc_hook = ingress_hook(ifindex_of(device));
                const int rc = bpf_tc_hook_create(&tc_hook);
                if (rc != -EEXIST) {
                    check(rc, fmt::format("clsact on {} in {}", device, node.netns));
                }
                auto opts = filter_opts(stage.priority(), prog_fd);
                opts.flags = BPF_TC_F_REPLACE;
                check(bpf_tc_attach(&tc_hook, &opts),
                      fmt::format("attach {} to {} in {}", stage.name(), device, node.netns));
            }
        }
    });
}

void detach_priority(const NodeHooks& node, std::uint32_t priority) {
    in_netns(node.netns, [&] {
        for (const auto hook : kHooks) {
            for (const auto& device : node.devices(hook)) {
                const auto index = if_nametoindex(device.c_str());
                if (index == 0) {
                    continue;
                }
                auto tc_hook = ingress_hook(static_cast<int>(index));
                const auto opts = filter_opts(priority, 0);
                const int rc = bpf_tc_detach(&tc_hook, &opts);
                if (rc != -ENOENT && rc != -EINVAL) {
                    check(rc, fmt::format("detach priority {} from {}", priority, device));
                }
            }
        }
    });
}

std::array<path_counter, PATH_COUNT> read_path_counters(const std::string& pin_dir) {
    std::array<path_counter, PATH_COUNT> totals{};
    const auto path = pin_dir + "/path_stats";
    if (!std::filesystem::exists(path)) {
        return totals;
    }
    const int fd = bpf_obj_get(path.c_str());
    check(fd, "open " + path);
    const int cpus = libbpf_num_possible_cpus();
    std::vector<path_counter> per_cpu(static_cast<std::size_t>(cpus));
    for (__u32 key = 0; key < PATH_COUNT; ++key) {
        const int rc = bpf_map_lookup_elem(fd, &key, per_cpu.data());
        if (rc < 0) {
            close(fd);
            check(rc, "read " + path);
        }
        for (const auto& value : per_cpu) {
            totals[key].packets += value.packets;
            totals[key].bytes += value.bytes;
        }
    }
    close(fd);
    return totals;
}

std::string_view path_name(int path) {
    static constexpr std::string_view kNames[PATH_COUNT] = {
        "peer_local",        "fib_redirect",  "fib_neigh", "peer_from_netdev", "tunnel_tx",
        "peer_from_overlay", "pass_not_ipv4", "pass_ttl",  "pass_fib",         "pass_not_local"};
    return path >= 0 && path < PATH_COUNT ? kNames[path] : "unknown";
}

void ensure_bpffs(const std::string& marker) {
    struct statfs fs {};
    if (statfs(kBpfFsRoot, &fs) == 0 && fs.f_type == kBpfFsMagic) {
        return;
    }
    if (mount("bpf", kBpfFsRoot, "bpf", 0, "mode=0700") != 0) {
        throw std::runtime_error(fmt::format("cannot mount a BPF filesystem on {}: {}", kBpfFsRoot,
                                             std::strerror(errno)));
    }
    std::filesystem::create_directories(std::filesystem::path(marker).parent_path());
    std::ofstream(marker) << "calcmesh lab mounted " << kBpfFsRoot << "\n";
}

void release_bpffs(const std::string& marker) {
    std::error_code error;
    if (!std::filesystem::exists(marker, error)) {
        return;
    }
    // A fresh bpffs holds the kernel's preloaded iterators (maps.debug, progs.debug); anything
    // else belongs to someone.
    for (const auto& entry : std::filesystem::directory_iterator(kBpfFsRoot, error)) {
        const auto name = entry.path().filename();
        if (name != "maps.debug" && name != "progs.debug") {
            return;
        }
    }
    if (error) {
        return;
    }
    if (umount(kBpfFsRoot) == 0) {
        std::filesystem::remove(marker, error);
    }
}

}  // namespace calcmesh::lab
