/* IPv4 in Ethernet frames. */
#ifndef CALCMESH_LAB_LIB_IPV4_H
#define CALCMESH_LAB_LIB_IPV4_H

#include "common.h"

/* The IPv4 header of an Ethernet frame, in the packet itself (writable), or NULL if the frame
 * holds no IPv4 packet. */
static __always_inline struct iphdr* ipv4_header(struct __sk_buff* skb) {
    void* data = (void*)(long)skb->data;
    void* data_end = (void*)(long)skb->data_end;
    struct ethhdr* eth = data;
    if ((void*)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
        return NULL;
    struct iphdr* ip = (void*)(eth + 1);
    if ((void*)(ip + 1) > data_end || ip->version != 4)
        return NULL;
    return ip;
}

#endif
