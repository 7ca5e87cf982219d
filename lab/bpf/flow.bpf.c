/* The flow stage: identity-based policy with connection tracking, and flow events for the
 * observer, in front of the router on every hook of a node (as Cilium's bpf_lxc does policy and
 * trace/drop notifications before it delivers a packet).
 *
 * - Every address maps to a security identity through the ipcache (pods of all clusters, nodes,
 *   and the world for anything else).
 * - Packets of a connection in its original direction are checked against the policy of the
 *   sending pod (egress, on the container hook) and of the receiving pod (ingress, when it is a
 *   pod of this node), on every packet as Cilium does, so a new policy also stops open
 *   connections. Replies of a tracked connection pass without a policy lookup.
 * - Events go to user space through a ring buffer: a new connection, the first reply, FIN and
 *   RST, every drop, and the first bytes of requests and responses on HTTP and Kafka ports. A
 *   full ring buffer is counted (FLOW_LOST), never silent.
 *
 * Every packet the stage does not drop goes on to the next stage with TC_ACT_UNSPEC. */
// clang-format off: vmlinux.h must come before the libbpf headers.
#include "vmlinux.h"
// clang-format on
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "flow_maps.h"
#include "lib/common.h"
#include "lib/counters.h"
#include "lib/ipv4.h"

/* Marks in ct_entry.*_flags that are not TCP flags: a reply of a protocol without flags. */
#define SEEN_REPLY 0x80
#define IDENTITY_WORLD 2

struct packet {
    __u32 saddr;
    __u32 daddr;
    __u16 sport;
    __u16 dport;
    __u8 protocol;
    __u8 tcp_flags;
    __u32 payload_off;
    __u32 payload_len;
};

struct flow_ctx {
    struct packet pkt;
    __u32 src_identity;
    __u32 dst_identity;
    __u32 rule;
    __u8 direction;
    __u8 is_reply;
    __u8 observation;
};

static __always_inline void count(enum flow_counter counter) {
    __u64* value = counter_at(&flow_stats, counter);
    if (value)
        (*value)++;
}

/* IPv4 with the TCP or UDP ports and where the TCP payload starts; -1 for anything else. */
static __always_inline int parse(struct __sk_buff* skb, struct packet* p) {
    const struct iphdr* header = ipv4_header(skb);
    if (!header)
        return -1;
    /* A copy: the checks below must hold for the values used after them. */
    const struct iphdr ip = *header;
    __u32 ip_len = ip.ihl * 4;
    if (ip_len < sizeof(ip))
        return -1;
    p->saddr = ip.saddr;
    p->daddr = ip.daddr;
    p->protocol = ip.protocol;
    if (ip.frag_off & bpf_htons(IP_OFFSET_MASK))
        return 0; /* a later fragment: no ports to read */
    __u32 l4 = ETH_HLEN + ip_len;
    if (ip.protocol == IPPROTO_TCP) {
        __u8 tcp[20];
        if (bpf_skb_load_bytes(skb, l4, tcp, sizeof(tcp)) < 0)
            return -1;
        p->sport = (__u16)tcp[0] << 8 | tcp[1];
        p->dport = (__u16)tcp[2] << 8 | tcp[3];
        p->tcp_flags = tcp[13];
        __u32 headers = ip_len + (tcp[12] >> 4) * 4;
        __u32 total = bpf_ntohs(ip.tot_len);
        p->payload_off = ETH_HLEN + headers;
        p->payload_len = total > headers ? total - headers : 0;
    } else if (ip.protocol == IPPROTO_UDP) {
        __u16 ports[2];
        if (bpf_skb_load_bytes(skb, l4, ports, sizeof(ports)) < 0)
            return -1;
        p->sport = bpf_ntohs(ports[0]);
        p->dport = bpf_ntohs(ports[1]);
    }
    return 0;
}

static __always_inline const struct ipcache_info* ipcache_lookup(__u32 addr) {
    struct ipcache_key key = {.prefixlen = 32, .addr = addr};
    return bpf_map_lookup_elem(&ipcache, &key);
}

/* 0 if the endpoint's policy in `direction` lets the packet through (or the endpoint is not
 * default-deny there), else the drop reason. `rule` gets the allowing entry's number. */
static __always_inline int policy_check(__u32 subject, __u32 peer, __u16 port, __u8 protocol,
                                        __u8 direction, __u32* rule) {
    const struct policy_mode* mode = bpf_map_lookup_elem(&policy_modes, &subject);
    if (!mode || !(direction == DIRECTION_INGRESS ? mode->ingress : mode->egress))
        return 0;
    /* Most specific first: the first allow found names the rule. */
    struct policy_key keys[6] = {
        {subject, peer, port, protocol, direction}, {subject, peer, 0, protocol, direction},
        {subject, peer, 0, 0, direction},           {subject, 0, port, protocol, direction},
        {subject, 0, 0, protocol, direction},       {subject, 0, 0, 0, direction},
    };
    int allowed = 0;
#pragma unroll
    for (int i = 0; i < 6; i++) {
        const struct policy_entry* entry = bpf_map_lookup_elem(&policy, &keys[i]);
        if (!entry)
            continue;
        if (entry->flags & POLICY_DENY)
            return DROP_POLICY_DENY;
        if (!allowed) {
            allowed = 1;
            *rule = entry->rule;
        }
    }
    return allowed ? 0 : DROP_POLICY_DENIED;
}

/* Whether the node has no route for a destination outside the clusters: the kernel will drop
 * the packet, so the observer reports it as a drop. */
static __always_inline int no_route(struct __sk_buff* skb, const struct packet* p) {
    struct bpf_fib_lookup fib = {};
    fib.family = AF_INET;
    fib.l4_protocol = p->protocol;
    fib.ipv4_src = p->saddr;
    fib.ipv4_dst = p->daddr;
    fib.ifindex = skb->ingress_ifindex;
    long rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
    return rc == BPF_FIB_LKUP_RET_NOT_FWDED || rc == BPF_FIB_LKUP_RET_BLACKHOLE ||
           rc == BPF_FIB_LKUP_RET_UNREACHABLE || rc == BPF_FIB_LKUP_RET_PROHIBIT;
}

static __always_inline void fill(struct flow_event* e, struct __sk_buff* skb,
                                 const struct flow_ctx* c, __u8 kind, __u8 drop_reason) {
    e->time_ns = bpf_ktime_get_ns();
    e->saddr = c->pkt.saddr;
    e->daddr = c->pkt.daddr;
    e->sport = c->pkt.sport;
    e->dport = c->pkt.dport;
    e->src_identity = c->src_identity;
    e->dst_identity = c->dst_identity;
    e->ifindex = skb->ifindex;
    e->rule = c->rule;
    e->payload_len = 0;
    e->kind = kind;
    e->protocol = c->pkt.protocol;
    e->tcp_flags = c->pkt.tcp_flags;
    e->direction = c->direction;
    e->is_reply = c->is_reply;
    e->drop_reason = drop_reason;
    e->observation = c->observation;
    e->l7 = L7_NONE;
    e->pad[0] = 0;
    e->pad[1] = 0;
}

static __always_inline void report(struct __sk_buff* skb, const struct flow_ctx* c, __u8 kind,
                                   __u8 drop_reason) {
    struct flow_event* e = bpf_ringbuf_reserve(&flow_events, sizeof(*e), 0);
    if (!e) {
        count(FLOW_LOST);
        return;
    }
    fill(e, skb, c, kind, drop_reason);
    bpf_ringbuf_submit(e, 0);
    count(FLOW_EVENTS);
}

/* Whether a payload starts like a message worth decoding: an HTTP request line or status line,
 * or a Kafka request header with a plausible size, API key and version. */
static __always_inline int looks_like_message(struct __sk_buff* skb, const struct packet* p,
                                              __u8 l7, __u8 is_reply) {
    __u8 head[8];
    if (p->payload_len < sizeof(head) ||
        bpf_skb_load_bytes(skb, p->payload_off, head, sizeof(head)) < 0)
        return 0;
    if (l7 == L7_HTTP) {
        if (is_reply)
            return head[0] == 'H' && head[1] == 'T' && head[2] == 'T' && head[3] == 'P';
        /* An upper-case method token followed by a space: GET, POST, PUT, DELETE, ... */
        int i = 0;
#pragma unroll
        for (; i < 7; i++) {
            if (head[i] < 'A' || head[i] > 'Z')
                break;
        }
        return i >= 3 && head[i] == ' ';
    }
    if (l7 == L7_KAFKA && !is_reply) {
        __u32 size = (__u32)head[0] << 24 | (__u32)head[1] << 16 | (__u32)head[2] << 8 | head[3];
        __u16 api_key = (__u16)head[4] << 8 | head[5];
        __u16 api_version = (__u16)head[6] << 8 | head[7];
        return size >= 8 && size < (64 << 20) && api_key < 100 && api_version < 32;
    }
    return 0;
}

static __always_inline void report_payload(struct __sk_buff* skb, const struct flow_ctx* c,
                                           __u8 l7) {
    __u32 len = c->pkt.payload_len;
    __u32 available = skb->len > c->pkt.payload_off ? skb->len - c->pkt.payload_off : 0;
    if (len > available)
        len = available;
    if (len > FLOW_PAYLOAD_MAX)
        len = FLOW_PAYLOAD_MAX;
    if (len == 0)
        return;
    struct flow_payload_event* e = bpf_ringbuf_reserve(&flow_events, sizeof(*e), 0);
    if (!e) {
        count(FLOW_LOST);
        return;
    }
    fill(&e->head, skb, c, FLOW_L7, 0);
    e->head.l7 = l7;
    /* The same 1..FLOW_PAYLOAD_MAX (a power of two), written so that the verifier sees the bound
     * on the register the helper gets. */
    barrier_var(len);
    len = ((len - 1) & (FLOW_PAYLOAD_MAX - 1)) + 1;
    if (bpf_skb_load_bytes(skb, c->pkt.payload_off, e->payload, len) < 0)
        len = 0;
    e->head.payload_len = len;
    bpf_ringbuf_submit(e, 0);
    count(FLOW_EVENTS);
}

static __always_inline void capture(struct __sk_buff* skb, const struct flow_ctx* c,
                                    __u16 server_port) {
    if (c->pkt.protocol != IPPROTO_TCP || c->pkt.payload_len == 0)
        return;
    const __u8* l7 = bpf_map_lookup_elem(&l7_ports, &server_port);
    if (l7 && looks_like_message(skb, &c->pkt, *l7, c->is_reply))
        report_payload(skb, c, *l7);
}

/* A packet of a connection this node tracks, in the reply direction. */
static __always_inline int handle_reply(struct __sk_buff* skb, struct flow_ctx* c,
                                        struct ct_entry* ct, int src_local) {
    c->is_reply = 1;
    c->direction = ct->direction;
    __u8 marks = c->pkt.protocol == IPPROTO_TCP ? c->pkt.tcp_flags & (TCP_SYN | TCP_FIN | TCP_RST)
                                                : SEEN_REPLY;
    __u8 news = marks & ~ct->rev_flags;
    if (news) {
        ct->rev_flags |= news;
        report(skb, c, FLOW_TRACE, 0);
    }
    /* Responses are captured where the server sends them. */
    if (src_local)
        capture(skb, c, c->pkt.sport);
    return TC_ACT_UNSPEC;
}

static __always_inline int handle(struct __sk_buff* skb, int from_container) {
    struct flow_ctx c = {};
    if (parse(skb, &c.pkt) < 0)
        return TC_ACT_UNSPEC;
    const struct ipcache_info* src = ipcache_lookup(c.pkt.saddr);
    const struct ipcache_info* dst = ipcache_lookup(c.pkt.daddr);
    int src_local = src && (src->flags & IPCACHE_LOCAL_POD);
    int dst_local = dst && (dst->flags & IPCACHE_LOCAL_POD);
    /* What arrives from outside concerns this node only when it is for one of its pods; the
     * rest is node traffic such as encapsulated packets. */
    if (from_container ? !src_local : !dst_local)
        return TC_ACT_UNSPEC;
    c.src_identity = src ? src->identity : IDENTITY_WORLD;
    c.dst_identity = dst ? dst->identity : IDENTITY_WORLD;
    c.observation = dst_local ? OBSERVE_TO_ENDPOINT : OBSERVE_TO_STACK;

    struct ct_key key = {.saddr = c.pkt.saddr,
                         .daddr = c.pkt.daddr,
                         .sport = c.pkt.sport,
                         .dport = c.pkt.dport,
                         .protocol = c.pkt.protocol};
    struct ct_entry* ct = bpf_map_lookup_elem(&conntrack, &key);
    if (!ct) {
        struct ct_key reverse = {.saddr = c.pkt.daddr,
                                 .daddr = c.pkt.saddr,
                                 .sport = c.pkt.dport,
                                 .dport = c.pkt.sport,
                                 .protocol = c.pkt.protocol};
        struct ct_entry* reply = bpf_map_lookup_elem(&conntrack, &reverse);
        if (reply)
            return handle_reply(skb, &c, reply, src_local);
    }

    /* The original direction: the sender's egress policy, then the receiver's ingress policy. */
    int reason = 0;
    __u32 egress_rule = 0, ingress_rule = 0;
    c.direction = dst_local ? DIRECTION_INGRESS : DIRECTION_EGRESS;
    if (from_container) {
        reason = policy_check(c.src_identity, c.dst_identity, c.pkt.dport, c.pkt.protocol,
                              DIRECTION_EGRESS, &egress_rule);
        if (reason)
            c.direction = DIRECTION_EGRESS;
    }
    if (!reason && dst_local) {
        reason = policy_check(c.dst_identity, c.src_identity, c.pkt.dport, c.pkt.protocol,
                              DIRECTION_INGRESS, &ingress_rule);
    }
    c.rule = ingress_rule ? ingress_rule : egress_rule;
    if (reason) {
        count(FLOW_DROPPED_POLICY);
        report(skb, &c, FLOW_DROP, reason);
        return TC_ACT_SHOT;
    }

    __u8 syn = c.pkt.protocol == IPPROTO_TCP && (c.pkt.tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_SYN;
    /* A SYN on a finished connection's tuple opens a new one. */
    int is_new = !ct || (syn && ((ct->fwd_flags | ct->rev_flags) & (TCP_FIN | TCP_RST)));
    if (is_new) {
        if (from_container && !dst && no_route(skb, &c.pkt)) {
            report(skb, &c, FLOW_DROP, DROP_FIB_LOOKUP_FAILED);
            return TC_ACT_UNSPEC;
        }
        struct ct_entry entry = {.created_ns = bpf_ktime_get_ns(),
                                 .direction = c.direction,
                                 .fwd_flags = c.pkt.tcp_flags & (TCP_SYN | TCP_FIN | TCP_RST)};
        bpf_map_update_elem(&conntrack, &key, &entry, BPF_ANY);
        count(FLOW_NEW);
        report(skb, &c, FLOW_TRACE, 0);
    } else {
        c.direction = ct->direction;
        __u8 news = c.pkt.tcp_flags & (TCP_FIN | TCP_RST) & ~ct->fwd_flags;
        if (news) {
            ct->fwd_flags |= news;
            report(skb, &c, FLOW_TRACE, 0);
        }
    }
    /* Requests are captured where they enter the server's pod. */
    if (dst_local)
        capture(skb, &c, c.pkt.dport);
    return TC_ACT_UNSPEC;
}

/* tc ingress of every lxc device: what the node's pods send. */
SEC("tc")
int flow_container(struct __sk_buff* skb) {
    return handle(skb, 1);
}

/* tc ingress of the underlay device and of the VXLAN device: what reaches the node's pods. */
SEC("tc")
int flow_outside(struct __sk_buff* skb) {
    return handle(skb, 0);
}

char LICENSE[] SEC("license") = "GPL";
