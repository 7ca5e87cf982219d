/* Counters in per-CPU arrays, which user space sums over the CPUs. */
#ifndef CALCMESH_LAB_LIB_COUNTERS_H
#define CALCMESH_LAB_LIB_COUNTERS_H

/* This CPU's counter `key` of a per-CPU array map, or NULL if the key is out of range. */
static __always_inline void* counter_at(void* map, __u32 key) {
    return bpf_map_lookup_elem(map, &key);
}

#endif
