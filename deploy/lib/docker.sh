# shellcheck shell=bash
# shellcheck disable=SC2154  # deploy_dir and dry_run come from lib/common.sh
# The kind provider's own Docker daemon: its own socket, data root and exec root, so that it never
# touches another Docker installation of the machine. It adds no bridge, no iptables rule and no
# address of its own to the machine; the one network the kit creates (KIND_NETWORK_SUBNET, in
# 198.18.0.0/15) is the only thing it puts into the machine's namespace, and deploy/down removes it.
# Sourced after lib/common.sh.

readonly KIT_DOCKER_DIR=${CALCMESH_DOCKER_DIR:-/var/lib/calcmesh/docker}
readonly KIT_DOCKER_RUN=${CALCMESH_DOCKER_RUN:-/run/calcmesh-docker}
readonly KIT_DOCKER_SOCKET=$KIT_DOCKER_RUN/docker.sock
# Networks that Docker creates without an explicit subnet come from here too.
readonly KIT_DOCKER_POOL=198.19.128.0/18
# runc behind a wrapper that leaves out the capabilities the machine cannot grant (see the script):
# kind's nodes are privileged containers.
readonly KIT_DOCKER_RUNTIME=$deploy_dir/kind/node/files/usr/local/sbin/runc-bounded

export DOCKER_HOST=unix://$KIT_DOCKER_SOCKET

kit_docker_running() {
    [[ -S $KIT_DOCKER_SOCKET ]] && docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

# Starts the daemon unless it runs; waits until it answers.
kit_docker_start() {
    if ((dry_run)); then
        run dockerd --data-root "$KIT_DOCKER_DIR/root" --exec-root "$KIT_DOCKER_RUN/exec" \
            --pidfile "$KIT_DOCKER_RUN/dockerd.pid" --host "$DOCKER_HOST" \
            --bridge none --iptables=false --ip-forward=false --ip-masq=false \
            --default-address-pool "base=$KIT_DOCKER_POOL,size=24" \
            --add-runtime "runc-bounded=$KIT_DOCKER_RUNTIME" --default-runtime runc-bounded
        return
    fi
    kit_docker_running && return
    command -v dockerd >/dev/null || die "needs dockerd (Debian's docker.io; scripts/install-deps --kind installs it)"
    mkdir -p "$KIT_DOCKER_DIR" "$KIT_DOCKER_RUN"
    log "starting the kit's Docker daemon on $KIT_DOCKER_SOCKET (log: $KIT_DOCKER_RUN/dockerd.log)"
    # setsid: the daemon outlives this script and is stopped only by kit_docker_stop.
    setsid dockerd --data-root "$KIT_DOCKER_DIR/root" --exec-root "$KIT_DOCKER_RUN/exec" \
        --pidfile "$KIT_DOCKER_RUN/dockerd.pid" --host "$DOCKER_HOST" \
        --bridge none --iptables=false --ip-forward=false --ip-masq=false \
        --default-address-pool "base=$KIT_DOCKER_POOL,size=24" \
        --add-runtime "runc-bounded=$KIT_DOCKER_RUNTIME" --default-runtime runc-bounded \
        >"$KIT_DOCKER_RUN/dockerd.log" 2>&1 </dev/null &
    for _ in $(seq 60); do
        kit_docker_running && return
        sleep 1
    done
    tail -20 "$KIT_DOCKER_RUN/dockerd.log" >&2
    die "the kit's Docker daemon did not answer within 60 s"
}

# Stops the daemon it started (by its pid file) and removes its socket and exec root.
# With --purge, also its data root: every image and container it held.
kit_docker_stop() {
    local purge=${1:-}
    local pidfile=$KIT_DOCKER_RUN/dockerd.pid
    if ((!dry_run)) && [[ -f $pidfile ]]; then
        local pid
        pid=$(<"$pidfile")
        if kill -0 "$pid" 2>/dev/null; then
            log "stopping the kit's Docker daemon (pid $pid)"
            run kill -TERM "$pid"
                    for _ in $(seq 60); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 1
            done
            kill -0 "$pid" 2>/dev/null && run kill -KILL "$pid"
        fi
    fi
    # The daemon leaves a bind mount of the machine's network namespace under its exec root
    # (netns/default), and overlay mounts if a container did not stop: unmount what is left.
    local mount_point
    if ((!dry_run)); then
        while read -r mount_point; do
            run umount --lazy "$mount_point"
        done < <(awk -v run="$KIT_DOCKER_RUN/" -v data="$KIT_DOCKER_DIR/" \
            'index($2, run) == 1 || index($2, data) == 1 { print $2 }' /proc/mounts | sort -r)
    fi
    run rm -rf "$KIT_DOCKER_RUN"
    if [[ $purge == --purge ]]; then
        run rm -rf "$KIT_DOCKER_DIR"
    fi
}
