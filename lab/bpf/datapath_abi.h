/* The layout shared by the lab's tc programs and the C++ loader: map keys, values and counter
 * indexes. Every program of a node (the router today, policy and flow stages later) declares its
 * maps through lab_maps.h, so one pinned instance per node is shared by all of them. */
#ifndef CALCMESH_LAB_DATAPATH_ABI_H
#define CALCMESH_LAB_DATAPATH_ABI_H

/* A pod that lives on this node, keyed by its IPv4 address (network byte order). */
struct endpoint_info {
    __u32 ifindex;    /* host side (lxc) veth of the pod, in the node's namespace */
    __u8 pod_mac[6];  /* the pod's eth0 */
    __u8 node_mac[6]; /* the lxc device: source of frames delivered to the pod */
};

/* Longest-prefix key of the tunnels map: a remote node's pod CIDR. */
struct tunnel_prefix {
    __u32 prefixlen;
    __u32 addr; /* network byte order */
};

/* Where to send traffic for a remote pod CIDR in tunnel mode. */
struct tunnel_info {
    __u32 remote_ipv4; /* the remote node's underlay address, host byte order (bpf_tunnel_key) */
    __u32 vni;
};

/* The paths a packet can take through the router; per-CPU counters are indexed by them. */
enum datapath_path {
    PATH_PEER_LOCAL = 0,    /* pod to pod on one node: bpf_redirect_peer */
    PATH_FIB_REDIRECT,      /* pod to elsewhere: bpf_fib_lookup + bpf_redirect */
    PATH_FIB_NEIGH,         /* pod to elsewhere, neighbour unresolved: bpf_redirect_neigh */
    PATH_PEER_FROM_NETDEV,  /* underlay to local pod: bpf_redirect_peer */
    PATH_TUNNEL_TX,         /* pod to remote node: bpf_skb_set_tunnel_key + bpf_redirect */
    PATH_PEER_FROM_OVERLAY, /* decapsulated to local pod: bpf_redirect_peer */
    PATH_PASS_NOT_IPV4,     /* handed to the kernel: not IPv4 (ARP, ...) */
    PATH_PASS_TTL,          /* handed to the kernel so it can answer time-exceeded */
    PATH_PASS_FIB,          /* handed to the kernel: the FIB lookup did not give a next hop */
    PATH_PASS_NOT_LOCAL,    /* handed to the kernel: arrived from outside for a non-pod */
    PATH_COUNT
};

struct path_counter {
    __u64 packets;
    __u64 bytes;
};

#endif
