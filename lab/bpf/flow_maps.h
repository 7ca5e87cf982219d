/* The maps of a node's flow stage, pinned by name under the node's pin directory like those of
 * lab_maps.h: user space fills the ipcache and the policy, reads the ring buffer and counters. */
#ifndef CALCMESH_LAB_FLOW_MAPS_H
#define CALCMESH_LAB_FLOW_MAPS_H

#include "calcmesh/lab/flow_abi.h"

struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, 1024);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct ipcache_key);
    __type(value, struct ipcache_info);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} ipcache SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);
    __type(key, struct policy_key);
    __type(value, struct policy_entry);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} policy SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, __u32);
    __type(value, struct policy_mode);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} policy_modes SEC(".maps");

/* LRU: a full table forgets the oldest connections instead of refusing new ones. */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 65536);
    __type(key, struct ct_key);
    __type(value, struct ct_entry);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} conntrack SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 64);
    __type(key, __u16);
    __type(value, __u8);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} l7_ports SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 512 * 1024);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} flow_events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, FLOW_COUNTER_COUNT);
    __type(key, __u32);
    __type(value, __u64);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} flow_stats SEC(".maps");

#endif
