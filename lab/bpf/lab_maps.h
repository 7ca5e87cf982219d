/* The maps of a node's datapath. Pinned by name under the node's pin directory, so every object
 * loaded for that node (router, and later policy or flow stages) that includes this header shares
 * one instance, and user space reaches them after the loader has exited. */
#ifndef CALCMESH_LAB_MAPS_H
#define CALCMESH_LAB_MAPS_H

#include "datapath_abi.h"

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 256);
    __type(key, __u32);
    __type(value, struct endpoint_info);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} endpoints SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, 64);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct tunnel_prefix);
    __type(value, struct tunnel_info);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} tunnels SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, PATH_COUNT);
    __type(key, __u32);
    __type(value, struct path_counter);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} path_stats SEC(".maps");

#endif
