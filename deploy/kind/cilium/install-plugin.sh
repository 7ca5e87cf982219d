#!/bin/bash
# The agent pod's install-cni-binaries init container: copies the CNI plugins into the node's
# CNI binary directory, which the chart mounts at /host/opt/cni/bin. cilium-cni is replaced on
# every start, so that the node runs the plugin of the agent version it runs; loopback, which
# the container runtime runs for every pod, only when the node has none, so that a node's own
# stays. OVERWRITE_CILIUM=false and OVERWRITE_LOOPBACK=true change that; CNI_DIR (default
# /host/opt/cni) moves the directory.
# The container runs with all capabilities dropped: root still owns the directory, which is
# all that creating and renaming files in it takes.
set -euo pipefail

bin_dir=${CNI_DIR:-${HOST_PREFIX:-/host}/opt/cni}/bin
mkdir -p "$bin_dir"

# install_plugin SOURCE: writes the plugin under a hidden name and renames it into place, so
# that the runtime never runs a half-written file.
install_plugin() {
    local name
    name=$(basename "$1")
    cp "$1" "$bin_dir/.$name.new"
    mv -f "$bin_dir/.$name.new" "$bin_dir/$name"
    echo "installed $bin_dir/$name"
}

if [[ ${OVERWRITE_LOOPBACK:-false} == true || ! -e $bin_dir/loopback ]]; then
    install_plugin /cni/loopback
fi
if [[ ${OVERWRITE_CILIUM:-true} == true || ! -e $bin_dir/cilium-cni ]]; then
    install_plugin /opt/cni/bin/cilium-cni
fi
