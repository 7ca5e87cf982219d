# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are used by the scripts that source this file
# Shared by the deploy scripts: the pinned versions, the four clusters, and how commands run.
# Every command that changes something goes through `run`, which prints it first and, with
# --dry-run, only prints it. Under --dry-run nothing is queried either: the scripts print the
# commands of a run that starts from nothing.

deploy_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
repo_dir=$(cd "$deploy_dir/.." && pwd)

# The version of a module that a wrapper module of deploy/kind/go requires: each go.mod there is
# the one place where the kit pins a version (deploy/images builds from them; the minikube path
# installs the same releases).
pinned_version() {
    sed -n -E "s#^(require)?[[:space:]]*$2 (v[^ ]+)( // indirect)?\$#\2#p" "$deploy_dir/kind/go/$1/go.mod" |
        head -n 1
}
# Cilium 1.19 is the last release with Kafka-aware L7 policy rules (deprecated in 1.19, removed
# in 1.20), which the policy demonstration uses; 1.19.5 is the patch release this kit was
# written against.
CILIUM_VERSION=$(pinned_version cilium github.com/cilium/cilium)
readonly CILIUM_VERSION=${CILIUM_VERSION#v}
KUBERNETES_VERSION=$(pinned_version kubernetes k8s.io/kubernetes)
readonly KUBERNETES_VERSION
readonly IMAGE=localhost/calcmesh:0.1.0
readonly NAMESPACE=calcmesh
# Name and id of each cluster; also in deploy/cilium/<name>.yaml (checked by calcmesh deploy check).
readonly CLUSTERS=(c1-client c2-kafka c3a-workers c3b-workers)
# One docker network for all minikube profiles: the nodes of all clusters share one L2 segment,
# which native routing (autoDirectNodeRoutes) needs.
readonly DOCKER_NETWORK=calcmesh

# The Helm values of a cluster, in the order docs/deploy.md gives, as lines for mapfile; after
# the options of deploy/up: datapath (tunnel or native), wireguard and ipsec (0 or 1).
# deploy/tests/helm-values checks every list this makes against the chart.
# shellcheck disable=SC2154  # datapath, wireguard and ipsec are deploy/up's options
cilium_values() {
    local cluster=$1
    local values=(--values "$deploy_dir/cilium/common.yaml" --values "$deploy_dir/cilium/$cluster.yaml"
        --values "$deploy_dir/cilium/datapath-$datapath.yaml")
    ((wireguard)) && values+=(--values "$deploy_dir/cilium/wireguard.yaml")
    ((ipsec)) && values+=(--values "$deploy_dir/cilium/ipsec.yaml")
    printf '%s\n' "${values[@]}"
}

# The -X flag that makes the hubble CLI report the pinned Cilium version.
hubble_version_ldflag() {
    echo "-X github.com/cilium/cilium/hubble/pkg.Version=v$CILIUM_VERSION"
}

# The -ldflags of helm (deploy/images, and the build tree's helm for deploy/tests/helm-values):
# its version, and the Kubernetes version that `helm template` assumes without a cluster (the
# chart wants >= 1.21).
helm_ldflags() {
    local package flags
    flags="-s -w -X helm.sh/helm/v3/internal/version.version=$(pinned_version helm helm.sh/helm/v3)"
    for package in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
        flags+=" -X $package.k8sVersionMajor=1 -X $package.k8sVersionMinor=$(cut -d. -f2 <<<"$KUBERNETES_VERSION")"
    done
    echo "$flags"
}

# Where the scripts keep what they make (the image archive); removed by deploy/down.
state_dir="$repo_dir/.run/deploy"
dry_run=0
# Where the clusters run: minikube (the default) or kind (lib/kind.sh); set by --provider.
provider=minikube

log() {
    printf '==> %s\n' "$*"
}

die() {
    printf '%s: %s\n' "$(basename "$0")" "$*" >&2
    exit 1
}

# Prints a command, quoted so that it can be pasted into a shell, then runs it unless --dry-run.
run() {
    printf '+'
    printf ' %q' "$@"
    printf '\n'
    if ((dry_run)); then
        return 0
    fi
    "$@"
}

# Runs a read-only query and returns its status; under --dry-run it runs nothing and fails, so
# that the script takes the path of a fresh start.
query() {
    if ((dry_run)); then
        return 1
    fi
    "$@" >/dev/null 2>&1
}

# Fails unless each named tool is on PATH (skipped under --dry-run, which needs none).
require() {
    ((dry_run)) && return 0
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || die "needs '$tool' on PATH (see docs/deploy.md, Prerequisites)"
    done
}

# The container engine: $CALCMESH_ENGINE, else docker, else podman.
container_engine() {
    if [[ -n ${CALCMESH_ENGINE:-} ]]; then
        echo "$CALCMESH_ENGINE"
    elif ((dry_run)) || command -v docker >/dev/null; then
        echo docker
    elif command -v podman >/dev/null; then
        echo podman
    else
        die "needs docker or podman on PATH"
    fi
}

# Takes `--provider NAME` out of a script's arguments (every script accepts it): sets provider and
# leaves the other arguments in script_args, for `set -- "${script_args[@]}"`.
take_provider_option() {
    script_args=()
    while (($#)); do
        case $1 in
            --provider)
                (($# >= 2)) || die "--provider needs a value: minikube or kind"
                provider=$2
                shift
                ;;
            --provider=*) provider=${1#--provider=} ;;
            *) script_args+=("$1") ;;
        esac
        shift
    done
}

# Loads what the chosen provider needs; fails on an unknown one.
use_provider() {
    case $provider in
        minikube) ;;
        kind) source "$(dirname "${BASH_SOURCE[0]}")/kind.sh" ;;
        *) die "--provider must be minikube or kind, not '$provider'" ;;
    esac
}
