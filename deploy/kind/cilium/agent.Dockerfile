# The Cilium agent image (localhost/cilium/cilium): the agent, its command-line tools, the CNI
# plugin, the BPF sources it compiles at run time, and what the chart's init containers run.
# deploy/kind/cilium/build assembles the build context (binaries built from the Cilium module,
# the BPF sources, the scripts beside this file) and builds it in the kit's Docker daemon.
#
# One Dockerfile per image, each with a context of its own files only: the daemon's builder is
# the classic one (no BuildKit), which runs every stage before the --target stage and uploads
# the whole context each time; separate files keep each build to its own stages and binaries.
# Only classic-builder syntax is used here (no RUN --mount, no COPY --chmod, no heredocs).

# loopback, the CNI plugin that the container runtime runs to bring up lo in each pod: node
# images do not always ship it, so the agent's install-cni-binaries init container installs it
# (from /cni/loopback, as the chart expects). Debian packages it with the reference plugins.
FROM debian:12-slim AS cni-plugins
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        containernetworking-plugins \
    && cp /usr/lib/cni/loopback /loopback

# The compiler the agent builds its datapath with: Debian's clang 19 and llc, with only the
# shared libraries they load. The clang-19 package also depends on GCC's headers, binutils and
# the sanitizer runtimes, which BPF programs compiled with -nostdinc never use; copying the two
# programs keeps some 300 MB of them out of an image that every node loads.
FROM debian:12-slim AS llvm
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends clang-19 llvm-19
# clang and llc, with the two LLVM libraries they load (libclang-cpp, libLLVM), in the layout
# of the package: the programs look for their libraries in ../lib (their RUNPATH) first, so
# the libraries need no place in the system's library directories. The other libraries they
# load are installed as packages in the runtime stage.
RUN mkdir -p /llvm/usr/lib/llvm-19/bin /llvm/usr/lib/llvm-19/lib \
    && cp /usr/lib/llvm-19/bin/clang /usr/lib/llvm-19/bin/llc /llvm/usr/lib/llvm-19/bin/ \
    && ldd /usr/lib/llvm-19/bin/clang | awk '$1 ~ /^lib(clang-cpp|LLVM)\.so/ { print $3 }' \
        | xargs -I{} cp -L {} /llvm/usr/lib/llvm-19/lib/ \
    && ls /llvm/usr/lib/llvm-19/lib/libclang-cpp.so.19.1 /llvm/usr/lib/llvm-19/lib/libLLVM.so.19.1

FROM debian:12-slim
# What the agent and the chart's commands run besides Cilium's own binaries and the compiler:
# - iproute2: `ip` (the health endpoint's routes are set with it) and `tc` for debugging.
# - iptables, ipset: with kube-proxy replacement and BPF masquerading the agent still keeps
#   iptables chains of its own (CILIUM_*) and an ipset of node addresses.
# - kmod: modprobe, for the kernel modules the agent asks for (e.g. vxlan, xt_socket).
# - bpftool: inspects the loaded programs and maps (cilium-bugtool calls it).
# - ca-certificates: trusted roots, for tools that reach TLS endpoints outside the cluster CA.
# - libedit2, libxml2, libz3-4: the libraries clang and llc load besides the two LLVM ones
#   copied from the llvm stage and those of the base.
# bash, nsenter (util-linux), mount, grep and find are in the Debian base already.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        bpftool ca-certificates iproute2 ipset iptables kmod libedit2 libxml2 libz3-4 \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /usr/share/info/*
# The agent runs `clang` (pkg/datapath/loader/compile.go) from PATH; llc is there for tools and
# older scripts. The last command proves at build time that the copy is complete: clang must
# compile a BPF object.
COPY --from=llvm /llvm/ /
RUN ln -s /usr/lib/llvm-19/bin/clang /usr/local/bin/clang \
    && ln -s /usr/lib/llvm-19/bin/llc /usr/local/bin/llc \
    && llc --version >/dev/null \
    && echo 'int answer(void) { return 42; }' | clang --target=bpf -O2 -c -x c - -o /dev/null

# iptables has two backends (nft and legacy) and the agent's rules must go where the node's own
# rules are; the wrapper picks the node's backend on first use (see iptables-wrapper).
COPY iptables-wrapper /usr/sbin/iptables-wrapper
RUN for family in iptables ip6tables; do \
        update-alternatives --install "/usr/sbin/$family" "$family" /usr/sbin/iptables-wrapper 100 \
            --slave "/usr/sbin/$family-restore" "$family-restore" /usr/sbin/iptables-wrapper \
            --slave "/usr/sbin/$family-save" "$family-save" /usr/sbin/iptables-wrapper; \
    done

COPY --from=cni-plugins /loopback /cni/loopback
# Cilium's binaries under the names the chart and the agent use (cilium-agent, cilium-dbg and
# its old name cilium, cilium-health-responder, cilium-mount, cilium-sysctlfix, ...), the CNI
# plugin in /opt/cni/bin, the BPF sources in /var/lib/cilium/bpf (the bpf directory of the
# agent's --lib-dir, /var/lib/cilium by default), and the three scripts the chart runs by
# absolute path.
COPY usr/ /usr/
COPY opt/ /opt/
COPY var/ /var/
COPY init-container.sh install-plugin.sh cni-uninstall.sh /

# cilium-dbg and hubble in the agent's container talk to the agent over its local sockets.
ENV HUBBLE_SERVER=unix:///var/run/cilium/hubble.sock
WORKDIR /home/cilium
CMD ["/usr/bin/cilium-dbg"]
