#!/bin/bash
# The agent container's preStop hook. With cni.uninstall (cilium-config key cni-uninstall,
# mounted at /tmp/cilium/config-map), an agent that stops removes its CNI configuration from
# the node, so that the runtime schedules no pod onto a node whose CNI is gone; the agent
# writes it again when it starts. Nothing is removed when the CNI configuration is managed
# outside Cilium (cni.customConf, key custom-cni-conf; CILIUM_CUSTOM_CNI_CONF overrides it).
set -euo pipefail

config=/tmp/cilium/config-map
conf_dir=${CNI_CONF_DIR:-${HOST_PREFIX:-/host}/etc/cni/net.d}

setting() {
    cat "$config/$1" 2>/dev/null || true
}

if [[ $(setting cni-uninstall) != true ]]; then
    echo "cni-uninstall is off: the CNI configuration stays"
    exit 0
fi
if [[ ${CILIUM_CUSTOM_CNI_CONF:-$(setting custom-cni-conf)} == true ]]; then
    echo "the CNI configuration is managed outside Cilium: it stays"
    exit 0
fi
# Cilium's configuration files only (.conf and .conflist are what runtimes read); the agent
# renamed other plugins' files to *.cilium_bak when it started and leaves them as they are.
echo "removing Cilium's CNI configuration from $conf_dir"
find "$conf_dir" -maxdepth 1 -type f -name '*cilium*' \( -name '*.conf' -o -name '*.conflist' \) \
    -print -delete
