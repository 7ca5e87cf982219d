# shellcheck shell=bash
# shellcheck disable=SC2154  # deploy_dir, state_dir and dry_run come from lib/common.sh
# The kind provider: the four clusters as kind clusters (nodes are containers of the kit's own
# Docker daemon, lib/docker.sh), with the images that deploy/images built on this machine.
# Sourced after lib/common.sh; it exports KUBECONFIG (a kubeconfig of the kit's own, whose
# contexts are the cluster names) and puts the kit's tools (kind, helm, kubectl, hubble) first
# on PATH, so that the other scripts run unchanged against these clusters.
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/docker.sh"

readonly KIT_CACHE=${CALCMESH_CACHE:-/var/cache/calcmesh}
readonly KIT_TOOLS=$KIT_CACHE/tools
readonly KIND_STATE=$state_dir/kind
export KUBECONFIG=$KIND_STATE/kubeconfig
export PATH=$KIT_TOOLS:$PATH
# kind puts its nodes on this docker network (created here with a subnet of our own), the one L2
# segment of all clusters that native routing needs.
export KIND_EXPERIMENTAL_DOCKER_NETWORK=$DOCKER_NETWORK
readonly KIND_NETWORK_SUBNET=198.19.8.0/24
readonly KIND_NETWORK_GATEWAY=198.19.8.1
readonly KIND_NETWORK_BRIDGE=calcmesh0
readonly KIND_NODE_IMAGE=localhost/calcmesh-kind-node:$KUBERNETES_VERSION
# Each cluster's Service range; pod ranges are Cilium's cluster pools in deploy/cilium/<cluster>.yaml.
declare -gA KIND_SERVICE_CIDR=([c1-client]=198.19.32.0/24 [c2-kafka]=198.19.33.0/24
    [c3a-workers]=198.19.34.0/24 [c3b-workers]=198.19.35.0/24)
# Worker nodes besides the control plane: one in c3a-workers, so that both datapaths carry pod
# traffic between two nodes of one cluster as well as between clusters.
declare -gA KIND_WORKERS=([c1-client]=0 [c2-kafka]=0 [c3a-workers]=1 [c3b-workers]=0)
# Images each cluster runs besides Cilium's: name in the manifests -> local image.
readonly KIND_KAFKA_IMAGE=localhost/kafka:4.4.0
readonly KIND_TOOLS_IMAGE=localhost/calcmesh-tools:bookworm
readonly CILIUM_IMAGES=("localhost/cilium/cilium:v$CILIUM_VERSION"
    "localhost/cilium/operator-generic:v$CILIUM_VERSION"
    "localhost/cilium/clustermesh-apiserver:v$CILIUM_VERSION"
    "localhost/cilium/hubble-relay:v$CILIUM_VERSION")

# The directory of the Cilium module in the Go module cache (the chart is in it).
cilium_module_dir() {
    if ((dry_run)); then
        echo "<GOMODCACHE>/github.com/cilium/cilium@v$CILIUM_VERSION"
        return
    fi
    (cd "$deploy_dir/kind/go/cilium" && go list -m -f '{{.Dir}}' github.com/cilium/cilium)
}

# True when the running kernel's configuration says that OPTION is not set (a kernel that does
# not publish its configuration is given the benefit of the doubt).
kernel_lacks() {
    # grep reads to the end: with -q it would stop early and pipefail report gzip's SIGPIPE.
    [[ -r /proc/config.gz ]] && gzip -dc /proc/config.gz | grep -x "# $1 is not set" >/dev/null
}

kind_require() {
    ((dry_run)) && return 0
    local tool
    for tool in kind helm kubectl hubble; do
        [[ -x $KIT_TOOLS/$tool ]] || die "no $KIT_TOOLS/$tool: run deploy/images first"
    done
}

kind_pod_cidr() {
    sed -n 's/.*clusterPoolIPv4PodCIDRList: \[\(.*\)\]/\1/p' "$deploy_dir/cilium/$1.yaml"
}

kind_create_network() {
    if query docker network inspect "$DOCKER_NETWORK"; then
        log "docker network $DOCKER_NETWORK exists"
        return
    fi
    log "creating docker network $DOCKER_NETWORK ($KIND_NETWORK_SUBNET, bridge $KIND_NETWORK_BRIDGE)"
    run docker network create --driver bridge --subnet "$KIND_NETWORK_SUBNET" \
        --gateway "$KIND_NETWORK_GATEWAY" --opt "com.docker.network.bridge.name=$KIND_NETWORK_BRIDGE" \
        --opt com.docker.network.bridge.enable_ip_masquerade=false "$DOCKER_NETWORK"
}

# The kind configuration of one cluster: no CNI and no kube-proxy (Cilium replaces both), the
# kit's pod and Service ranges; a control plane that also runs pods (kind removes its taint by
# itself only when the cluster has no worker).
kind_config() {
    local cluster=$1 worker
    cat <<EOF
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
name: $cluster
networking:
  disableDefaultCNI: true
  kubeProxyMode: none
  podSubnet: $(kind_pod_cidr "$cluster")
  serviceSubnet: ${KIND_SERVICE_CIDR[$cluster]}
nodes:
  - role: control-plane
EOF
    ((KIND_WORKERS[$cluster])) || return 0
    cat <<EOF
    kubeadmConfigPatches:
      - |
        kind: InitConfiguration
        nodeRegistration:
          taints: []
EOF
    for ((worker = 0; worker < KIND_WORKERS[$cluster]; worker++)); do
        echo "  - role: worker"
    done
}

# The kubelet of every node sets these kernel settings machine-wide (as under kind anywhere): their
# values before the first cluster are kept, and kind_delete_clusters puts them back.
readonly KIND_KERNEL_SETTINGS=(kernel/panic kernel/panic_on_oops vm/overcommit_memory)
# Docker also creates /lib/modules on the machine when it has none (kind mounts it into nodes):
# deploy/down removes it again if it is still empty.
kind_save_kernel_settings() {
    local saved=$KIND_STATE/kernel-settings setting
    ((dry_run)) && return
    [[ -f $saved ]] && return
    mkdir -p "$KIND_STATE"
    for setting in "${KIND_KERNEL_SETTINGS[@]}"; do
        printf '%s %s\n' "$setting" "$(<"/proc/sys/$setting")"
    done >"$saved"
    [[ -e /lib/modules ]] || : >"$KIND_STATE/no-lib-modules"
}

kind_restore_kernel_settings() {
    local saved=$KIND_STATE/kernel-settings setting value
    ((dry_run)) && return
    [[ -f $saved ]] || return 0
    while read -r setting value; do
        [[ $(<"/proc/sys/$setting") == "$value" ]] && continue
        log "restoring /proc/sys/$setting to $value (the kubelets changed it)"
        printf '%s\n' "$value" >"/proc/sys/$setting"
    done <"$saved"
    rm -f "$saved"
    if [[ -f $KIND_STATE/no-lib-modules ]]; then
        rmdir /lib/modules 2>/dev/null || true
        rm -f "$KIND_STATE/no-lib-modules"
    fi
}

kind_create_cluster() {
    local cluster=$1
    kind_save_kernel_settings
    if query kind get kubeconfig --name "$cluster"; then
        log "kind cluster $cluster exists"
        return
    fi
    local config=$KIND_STATE/$cluster-kind.yaml
    log "creating kind cluster $cluster ($((1 + KIND_WORKERS[$cluster])) node(s), no CNI, no kube-proxy)"
    run mkdir -p "$KIND_STATE"
    if ((dry_run)); then
        kind_config "$cluster"
    else
        kind_config "$cluster" >"$config"
    fi
    run kind create cluster --name "$cluster" --image "$KIND_NODE_IMAGE" --config "$config" \
        --kubeconfig "$KUBECONFIG" --wait 0s
    # The other scripts address clusters by name, as with minikube.
    run kubectl config rename-context "kind-$cluster" "$cluster"
}

# The control-plane node's address on the kit's network: the API server for Cilium's kube-proxy
# replacement, and the ClusterMesh API server's NodePort for the other clusters.
kind_node_ip() {
    if ((dry_run)); then
        echo "<$1 address>"
        return
    fi
    docker inspect --format "{{(index .NetworkSettings.Networks \"$DOCKER_NETWORK\").IPAddress}}" "$1"
}

kind_load_images() {
    local cluster=$1
    local images=("${CILIUM_IMAGES[@]}" "$IMAGE" "$KIND_TOOLS_IMAGE")
    [[ $cluster == c2-kafka ]] && images+=("$KIND_KAFKA_IMAGE")
    log "loading ${#images[@]} images into $cluster"
    run kind load docker-image --name "$cluster" "${images[@]}"
}

# One CA for Hubble and ClusterMesh in all four clusters, so that Hubble Relay and the
# ClusterMesh API servers trust each other (minikube copies cilium-ca instead).
kind_make_ca() {
    if ((!dry_run)) && [[ -f $KIND_STATE/ca.key ]]; then
        return
    fi
    log "creating the mesh's CA in $KIND_STATE"
    run openssl req -x509 -newkey rsa:2048 -nodes -days 1095 -subj /CN=calcmesh-cilium-ca \
        -keyout "$KIND_STATE/ca.key" -out "$KIND_STATE/ca.crt"
}

# Helm values that only exist once the clusters do: the API server's address, the shared CA and
# the other three clusters' ClusterMesh API servers (Cilium's Helm-only way of connecting); and
# the tag of the images deploy/images built (the pinned Cilium version).
kind_mesh_values() {
    local cluster=$1 peer port
    printf 'k8sServiceHost: %s\nk8sServicePort: 6443\n' "$(kind_node_ip "$cluster-control-plane")"
    printf 'image: {tag: v%s}\noperator: {image: {tag: v%s}}\nhubble: {relay: {image: {tag: v%s}}}\n' \
        "$CILIUM_VERSION" "$CILIUM_VERSION" "$CILIUM_VERSION"
    if ((dry_run)); then
        printf 'tls: {ca: {cert: <ca.crt>, key: <ca.key>}}\n'
    else
        printf 'tls:\n  ca:\n    cert: %s\n    key: %s\n' \
            "$(base64 -w0 <"$KIND_STATE/ca.crt")" "$(base64 -w0 <"$KIND_STATE/ca.key")"
    fi
    printf 'clustermesh:\n  apiserver: {image: {tag: v%s}}\n  config:\n    enabled: true\n    clusters:\n' "$CILIUM_VERSION"
    for peer in "${CLUSTERS[@]}"; do
        [[ $peer == "$cluster" ]] && continue
        port=$(sed -n 's/^ *nodePort: *\([0-9]*\).*/\1/p' "$deploy_dir/cilium/$peer.yaml")
        printf '      - name: %s\n        ips: [%s]\n        port: %s\n' \
            "$peer" "$(kind_node_ip "$peer-control-plane")" "$port"
    done
}

# The Helm values that kind adds after cilium_values (lib/common.sh), as lines for mapfile: the
# images built here, then the cluster's mesh values, which kind_install_cilium writes to the file
# named last.
kind_values() {
    printf '%s\n' --values "$deploy_dir/cilium/kind.yaml" --values "$KIND_STATE/$1-mesh.yaml"
}

# Installs or upgrades Cilium from the chart in the Cilium module with the kit's values.
kind_install_cilium() {
    local cluster=$1 values
    shift
    mapfile -t values < <(kind_values "$cluster")
    if ((dry_run)); then
        kind_mesh_values "$cluster"
    else
        kind_mesh_values "$cluster" >"${values[-1]}"
    fi
    log "helm upgrade --install cilium on $cluster"
    run helm upgrade --install cilium "$(cilium_module_dir)/install/kubernetes/cilium" \
        --kube-context "$cluster" --namespace kube-system "$@" "${values[@]}"
}

kind_wait_cilium() {
    local cluster=$1
    run kubectl --context "$cluster" --namespace kube-system rollout status daemonset/cilium --timeout 600s
    run kubectl --context "$cluster" --namespace kube-system rollout status deployment/cilium-operator --timeout 300s
    run kubectl --context "$cluster" --namespace kube-system rollout status deployment/clustermesh-apiserver --timeout 300s
    run kubectl --context "$cluster" --namespace kube-system rollout status deployment/hubble-relay --timeout 300s
}

# Waits until every agent of the cluster reports all three remote clusters ready.
kind_wait_mesh() {
    local cluster=$1 pod status
    log "waiting for $cluster's agents to connect to the other three clusters"
    ((dry_run)) && return
    for pod in $(kubectl --context "$cluster" --namespace kube-system get pods \
        --selector k8s-app=cilium --output name); do
        for _ in $(seq 120); do
            status=$(kubectl --context "$cluster" --namespace kube-system exec "$pod" -c cilium-agent -- \
                cilium-dbg status 2>/dev/null | sed -n 's/^ClusterMesh: *//p')
            [[ $status == 3/3* ]] && break
            sleep 5
        done
        printf '%s %s: ClusterMesh %s\n' "$cluster" "$pod" "${status:-unknown}"
        [[ $status == 3/3* ]] || die "$cluster $pod did not connect to all clusters"
    done
}

# Writes the overlay of a cluster with the broker's image replaced by the one built here, under
# $KIND_STATE/overlays/<overlay>.
kind_overlay() {
    local overlay=$1
    local dir=$KIND_STATE/overlays/$overlay
    run mkdir -p "$dir"
    local text
    text=$(printf 'resources: [../../../../../deploy/kubernetes/overlays/%s]\nimages:\n  - name: apache/kafka\n    newName: %s\n    newTag: %s\n' \
        "$overlay" "${KIND_KAFKA_IMAGE%:*}" "${KIND_KAFKA_IMAGE##*:}")
    printf '+ write %s/kustomization.yaml:\n%s\n' "$dir" "$text"
    ((dry_run)) || printf '%s\n' "$text" >"$dir/kustomization.yaml"
}

kind_delete_clusters() {
    local cluster
    for cluster in "${CLUSTERS[@]}"; do
        if ((dry_run)) || query kind get kubeconfig --name "$cluster"; then
            log "deleting kind cluster $cluster"
            run kind delete cluster --name "$cluster" --kubeconfig "$KUBECONFIG"
        fi
    done
    if ((dry_run)) || query docker network inspect "$DOCKER_NETWORK"; then
        log "removing the docker network $DOCKER_NETWORK"
        run docker network rm "$DOCKER_NETWORK"
    fi
    kind_restore_kernel_settings
}

# Applies (or with --delete removes) a kustomization of Cilium policies without their L7 rules:
# the L7 proxy (Envoy) is not built here, and an agent without it refuses a whole policy that
# has any ("L7 policy is not supported since L7 proxy is not enabled"). Each port rule stays, so
# L3/L4 enforcement is the same; what an L7 rule would have refused within an allowed port is
# allowed. Prints the command it stands for.
kind_apply_l4_policies() {
    local cluster=$1 kustomization=$2 verb=${3:-apply}
    printf '+ kubectl kustomize %q | jq <drop toPorts[].rules> | kubectl --context %q %s --filename -\n' \
        "$kustomization" "$cluster" "$verb"
    ((dry_run)) && return
    local extra=()
    [[ $verb == delete ]] && extra=(--ignore-not-found)
    kubectl kustomize "$kustomization" |
        kubectl --context "$cluster" create --dry-run=client --output json --filename - |
        jq 'def strip: map(if has("toPorts") then .toPorts |= map(del(.rules)) else . end);
            def l4: (if has("ingress") then .ingress |= strip else . end)
                    | (if has("egress") then .egress |= strip else . end);
            (if .kind == "List" then .items else [.] end)
            | {apiVersion: "v1", kind: "List",
               items: map((if .spec != null then .spec |= l4 else . end)
                          | (if .specs != null then .specs |= map(l4) else . end))}' |
        kubectl --context "$cluster" "$verb" "${extra[@]}" --filename -
}
