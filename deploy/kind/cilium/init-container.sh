#!/bin/bash
# The agent pod's clean-cilium-state init container. The chart passes the cilium-config keys
# clean-cilium-bpf-state and clean-cilium-state as CILIUM_BPF_STATE and CILIUM_ALL_STATE (the
# CLEAN_* names are what older manifests set); when one is "true", the node's BPF maps, or all
# of Cilium's state, are removed before the agent starts from nothing.
set -euo pipefail

if [[ ${CILIUM_BPF_STATE:-} == true || ${CLEAN_CILIUM_BPF_STATE:-} == true ]]; then
    cilium-dbg post-uninstall-cleanup --force --bpf-state
fi
if [[ ${CILIUM_ALL_STATE:-} == true || ${CLEAN_CILIUM_STATE:-} == true ]]; then
    cilium-dbg post-uninstall-cleanup --force --all-state
fi
