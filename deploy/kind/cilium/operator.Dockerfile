# The Cilium operator image (localhost/cilium/operator-generic): the generic operator, the
# variant without cloud IPAM, which the chart runs for cluster-pool IPAM as
# cilium-operator-generic (it appends "-generic" to operator.image.repository).
# deploy/kind/cilium/build assembles the build context (the binaries built from their Go modules
# and the files beside this file) and builds it in the kit's Docker daemon; agent.Dockerfile
# says why each image has a Dockerfile of its own. The binaries are static (CGO off), so the
# image needs no libraries: only the files of the rootfs stage.

# A distroless-style root for a static Go program, made from Debian: the CA bundle, root and the
# nonroot user (65532, which the chart runs the ClusterMesh API server and Hubble Relay as), a
# world-writable /tmp, and /var/run/cilium, where the ClusterMesh API server creates its
# socket. This stage is the same, letter for letter, in operator.Dockerfile,
# hubble-relay.Dockerfile and clustermesh-apiserver.Dockerfile, so that the builder's cache
# makes it once for the three images.
FROM debian:12-slim AS rootfs
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates \
    && mkdir -p /rootfs/etc/ssl/certs /rootfs/tmp /rootfs/home/nonroot /rootfs/var/run/cilium \
    && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
    && printf "%s\n" root:x:0:0:root:/root:/sbin/nologin \
        nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin >/rootfs/etc/passwd \
    && printf "%s\n" root:x:0: nonroot:x:65532: >/rootfs/etc/group \
    && chown 65532:65532 /rootfs/home/nonroot \
    && chmod 1777 /rootfs/tmp \
    && chmod 0777 /rootfs/var/run/cilium

FROM scratch
COPY --from=rootfs /rootfs/ /
COPY usr/ /usr/
ENV PATH=/usr/local/bin:/usr/bin:/bin
# The programs' gops agents keep their state here; /tmp is writable whatever user runs them.
ENV GOPS_CONFIG_DIR=/tmp/gops
CMD ["/usr/bin/cilium-operator-generic"]
