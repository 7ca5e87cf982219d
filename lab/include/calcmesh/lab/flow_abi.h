/* The layout shared by the flow stage (flow.bpf.c) and user space: the identity cache, the
 * policy and connection-tracking maps, and the flow events sent through the ring buffer. */
#ifndef CALCMESH_LAB_FLOW_ABI_H
#define CALCMESH_LAB_FLOW_ABI_H

/* Longest-prefix key of the ipcache: an IPv4 prefix (network byte order). Addresses it does not
 * hold belong to the world (identity 2). */
struct ipcache_key {
    __u32 prefixlen;
    __u32 addr;
};

enum ipcache_flags {
    IPCACHE_LOCAL_POD = 1, /* a pod of this node: policy for it is enforced here */
};

/* The security identity of an address, as Cilium's ipcache holds it. */
struct ipcache_info {
    __u32 identity;
    __u32 flags;
};

enum policy_direction {
    DIRECTION_INGRESS = 1,
    DIRECTION_EGRESS = 2,
};

/* One policy entry of an endpoint identity (`subject`): traffic with `peer` (0: any identity) to
 * `port` (host order, 0: any port) over `protocol` (IPPROTO_*, 0: any) in `direction`. */
struct policy_key {
    __u32 subject;
    __u32 peer;
    __u16 port;
    __u8 protocol;
    __u8 direction;
};

enum policy_entry_flags {
    POLICY_DENY = 1, /* a deny rule: wins over every allow */
    POLICY_L7 = 2,   /* the port carries L7 rules, which user space audits */
};

struct policy_entry {
    __u32 rule; /* user space's number of the rule, reported with the flow; 0: none */
    __u32 flags;
};

/* Which directions of an identity are default-deny: those selected by at least one policy. */
struct policy_mode {
    __u8 ingress;
    __u8 egress;
    __u8 pad[2];
};

/* A connection as first seen on this node: source and destination as in its first packet. */
struct ct_key {
    __u32 saddr;
    __u32 daddr;
    __u16 sport;
    __u16 dport;
    __u8 protocol;
    __u8 pad[3];
};

struct ct_entry {
    __u64 created_ns;
    __u8 direction; /* policy_direction of the connection on this node */
    __u8 fwd_flags; /* TCP flags already reported in the original direction */
    __u8 rev_flags; /* and in the reply direction */
    __u8 pad[5];
};

/* The L7 protocols whose requests and responses are captured, by server port. */
enum l7_protocol {
    L7_NONE = 0,
    L7_HTTP = 1,
    L7_KAFKA = 2,
};

enum flow_kind {
    FLOW_TRACE = 1, /* a forwarded packet: a new connection, its reply, FIN or RST */
    FLOW_DROP = 2,  /* a dropped packet, with drop_reason */
    FLOW_L7 = 3,    /* the first bytes of a request (or response) on an L7 port */
};

/* Drop reasons, numbered as Cilium's (and Hubble's drop_reason_desc). */
enum drop_reason {
    DROP_POLICY_DENIED = 133,     /* no rule allows it and the endpoint is default-deny */
    DROP_FIB_LOOKUP_FAILED = 169, /* no route to the destination */
    DROP_POLICY_DENY = 181,       /* a deny rule matched */
};

/* Where the packet was seen, as Cilium's trace observation points. */
enum flow_observation {
    OBSERVE_TO_ENDPOINT = 0, /* on its way into a pod of this node */
    OBSERVE_TO_STACK = 3,    /* leaving a pod for another node or the outside */
};

#define FLOW_PAYLOAD_MAX 256

struct flow_event {
    __u64 time_ns; /* bpf_ktime_get_ns */
    __u32 saddr;   /* network byte order */
    __u32 daddr;
    __u16 sport; /* host byte order */
    __u16 dport;
    __u32 src_identity;
    __u32 dst_identity;
    __u32 ifindex; /* the device the packet arrived on */
    __u32 rule;    /* the policy entry that allowed the connection, 0: none */
    __u16 payload_len;
    __u8 kind;
    __u8 protocol;
    __u8 tcp_flags; /* FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10 */
    __u8 direction;
    __u8 is_reply;
    __u8 drop_reason;
    __u8 observation;
    __u8 l7;
    __u8 pad[2];
};

/* An L7 event: the header followed by the first bytes of the TCP payload. */
struct flow_payload_event {
    struct flow_event head;
    __u8 payload[FLOW_PAYLOAD_MAX];
};

/* Per-CPU counters of the flow stage. */
enum flow_counter {
    FLOW_EVENTS = 0,     /* events written to the ring buffer */
    FLOW_LOST,           /* events the full ring buffer refused */
    FLOW_NEW,            /* connections tracked */
    FLOW_DROPPED_POLICY, /* packets dropped by policy */
    FLOW_COUNTER_COUNT
};

#endif
