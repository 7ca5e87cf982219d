/* eBPF host routing for the lab's nodes, the way Cilium does it: packets from pods and from the
 * underlay or overlay are delivered with bpf_redirect_peer, bpf_fib_lookup + bpf_redirect or
 * bpf_redirect_neigh, or sent into a collect-metadata VXLAN device, so the node's kernel
 * forwarding never sees them. Anything the router does not handle goes to the kernel unchanged.
 *
 * The router is the last stage on each hook: stages attached before it (lower tc priority) return
 * TC_ACT_UNSPEC to let a packet continue to it, or TC_ACT_SHOT to drop it. */
// clang-format off: vmlinux.h must come before the libbpf headers.
#include "vmlinux.h"
// clang-format on
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "lab_maps.h"
#include "lib/common.h"
#include "lib/counters.h"
#include "lib/ipv4.h"

/* The collect-metadata VXLAN device of the node, set by the loader; 0 routes natively. */
const volatile __u32 overlay_ifindex = 0;

static __always_inline void count(enum datapath_path path, struct __sk_buff* skb) {
    struct path_counter* counter = counter_at(&path_stats, path);
    if (counter) {
        counter->packets++;
        counter->bytes += skb->len;
    }
}

static __always_inline int pass(enum datapath_path path, struct __sk_buff* skb) {
    count(path, skb);
    return TC_ACT_OK;
}

/* The router hop: the kernel's incremental checksum update for a TTL decrement. */
static __always_inline void decrement_ttl(struct iphdr* ip) {
    __u32 check = ip->check;
    check += bpf_htons(0x0100);
    ip->check = (__u16)(check + (check >= 0xFFFF));
    ip->ttl--;
}

static __always_inline void set_macs(struct __sk_buff* skb, const __u8* dst, const __u8* src) {
    void* data = (void*)(long)skb->data;
    void* data_end = (void*)(long)skb->data_end;
    struct ethhdr* eth = data;
    if ((void*)(eth + 1) > data_end)
        return;
    __builtin_memcpy(eth->h_dest, dst, 6);
    __builtin_memcpy(eth->h_source, src, 6);
}

/* Delivers a packet for a pod of this node straight into the pod's namespace. */
static __always_inline int deliver_local(struct __sk_buff* skb, struct iphdr* ip,
                                         const struct endpoint_info* ep, enum datapath_path path) {
    decrement_ttl(ip);
    set_macs(skb, ep->pod_mac, ep->node_mac);
    count(path, skb);
    return bpf_redirect_peer(ep->ifindex, 0);
}

static __always_inline int route_via_tunnel(struct __sk_buff* skb, struct iphdr* ip,
                                            const struct tunnel_info* tunnel) {
    struct bpf_tunnel_key key = {};
    key.remote_ipv4 = tunnel->remote_ipv4;
    key.tunnel_id = tunnel->vni;
    key.tunnel_ttl = 64;
    decrement_ttl(ip);
    if (bpf_skb_set_tunnel_key(skb, &key, sizeof(key), BPF_F_ZERO_CSUM_TX) < 0)
        return TC_ACT_SHOT;
    count(PATH_TUNNEL_TX, skb);
    return bpf_redirect(overlay_ifindex, 0);
}

static __always_inline int route_via_fib(struct __sk_buff* skb, struct iphdr* ip) {
    struct bpf_fib_lookup fib = {};
    fib.family = AF_INET;
    fib.tos = ip->tos;
    fib.l4_protocol = ip->protocol;
    /* A GSO packet's IP length is the whole super-packet: the FIB MTU check would refuse it
     * (FRAG_NEEDED) and silently send bulk traffic to the slow path. 0 skips the check; the
     * segments are sized for the device's MTU anyway. */
    fib.tot_len = skb->gso_size ? 0 : bpf_ntohs(ip->tot_len);
    fib.ipv4_src = ip->saddr;
    fib.ipv4_dst = ip->daddr;
    fib.ifindex = skb->ingress_ifindex;

    long rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
    if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
        decrement_ttl(ip);
        set_macs(skb, fib.dmac, fib.smac);
        count(PATH_FIB_REDIRECT, skb);
        return bpf_redirect(fib.ifindex, 0);
    }
    if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
        struct bpf_redir_neigh next_hop = {};
        next_hop.nh_family = fib.family;
        next_hop.ipv4_nh = fib.ipv4_dst; /* the lookup replaced the destination by the gateway */
        decrement_ttl(ip);
        count(PATH_FIB_NEIGH, skb);
        return bpf_redirect_neigh(fib.ifindex, &next_hop, sizeof(next_hop), 0);
    }
    return pass(PATH_PASS_FIB, skb);
}

/* The IPv4 header of a packet the router may forward (IPv4, a TTL left), or NULL once the
 * packet is counted and `*verdict` says to pass it to the kernel. */
static __always_inline struct iphdr* forwardable(struct __sk_buff* skb, int* verdict) {
    struct iphdr* ip = ipv4_header(skb);
    if (!ip) {
        *verdict = pass(PATH_PASS_NOT_IPV4, skb);
        return NULL;
    }
    if (ip->ttl <= 1) {
        *verdict = pass(PATH_PASS_TTL, skb);
        return NULL;
    }
    return ip;
}

/* tc ingress of every lxc device: the pod's egress. */
SEC("tc")
int from_container(struct __sk_buff* skb) {
    int verdict;
    struct iphdr* ip = forwardable(skb, &verdict);
    if (!ip)
        return verdict;

    __u32 daddr = ip->daddr;
    const struct endpoint_info* ep = bpf_map_lookup_elem(&endpoints, &daddr);
    if (ep)
        return deliver_local(skb, ip, ep, PATH_PEER_LOCAL);

    if (overlay_ifindex) {
        struct tunnel_prefix prefix = {.prefixlen = 32, .addr = daddr};
        const struct tunnel_info* tunnel = bpf_map_lookup_elem(&tunnels, &prefix);
        if (tunnel)
            return route_via_tunnel(skb, ip, tunnel);
    }
    return route_via_fib(skb, ip);
}

/* Delivers packets that arrive on a node device to the node's pods. */
static __always_inline int from_outside(struct __sk_buff* skb, enum datapath_path path) {
    int verdict;
    struct iphdr* ip = forwardable(skb, &verdict);
    if (!ip)
        return verdict;
    __u32 daddr = ip->daddr;
    const struct endpoint_info* ep = bpf_map_lookup_elem(&endpoints, &daddr);
    if (!ep)
        return pass(PATH_PASS_NOT_LOCAL, skb);
    return deliver_local(skb, ip, ep, path);
}

/* tc ingress of the node's underlay device. */
SEC("tc")
int from_netdev(struct __sk_buff* skb) {
    return from_outside(skb, PATH_PEER_FROM_NETDEV);
}

/* tc ingress of the collect-metadata VXLAN device, after decapsulation. */
SEC("tc")
int from_overlay(struct __sk_buff* skb) {
    /* The inner frame carries the sender's MACs, which the kernel would treat as another host's;
     * mark it for this host before it is handed on. */
    bpf_skb_change_type(skb, PACKET_HOST);
    return from_outside(skb, PATH_PEER_FROM_OVERLAY);
}

char LICENSE[] SEC("license") = "GPL";
