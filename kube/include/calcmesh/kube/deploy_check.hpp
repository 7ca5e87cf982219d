#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "calcmesh/kube/cilium_values.hpp"
#include "calcmesh/kube/model.hpp"

/// The cross-checks of `calcmesh deploy check`: what Kubernetes and Cilium would accept but
/// calcmesh would not work with. Each check returns its findings; none means it passed.
namespace calcmesh::kube {

/// One problem, with where it is (file, object, field) and what is wrong.
struct Finding {
    std::string where;
    std::string message;

    std::string to_string() const { return where + ": " + message; }
};

/// What deploy/Dockerfile puts into the image: the files its final stage copies into a bin/
/// folder, which are the commands a container of the image can run.
struct ImageSpec {
    std::string file;
    std::vector<std::string> entrypoints;  ///< absolute paths, e.g. /usr/local/bin/worker
};

/// Reads the COPY instructions of a Dockerfile's last stage that copy into a bin/ folder.
Result<ImageSpec> load_dockerfile(const std::filesystem::path& path);

/// Whether a container runs the calcmesh image: the last path component of its repository is
/// "calcmesh" (localhost/calcmesh:0.1.0, or a registry copy of it).
bool is_calcmesh_image(const std::string& image);

/// Everything the checks read.
struct DeployInputs {
    Mesh mesh;
    std::map<std::string, CiliumValues> cilium;  ///< per cluster: common.yaml + <cluster>.yaml
    std::vector<CiliumValues> datapaths;         ///< per datapath-*.yaml: common.yaml + that file
    ImageSpec image;
    std::filesystem::path bin_dir;  ///< where the project's binaries are built
};

/// Loads the rendered manifests (one <cluster>.yaml per cluster), the Cilium values of each
/// cluster found there and every datapath variant, and the Dockerfile.
Result<DeployInputs> load_deploy_inputs(const std::filesystem::path& rendered_dir,
                                        const std::filesystem::path& cilium_dir,
                                        const std::filesystem::path& dockerfile,
                                        const std::filesystem::path& bin_dir);

/// Every workload's pod template carries app.kubernetes.io/name, app.kubernetes.io/component
/// and app.kubernetes.io/part-of=calcmesh (Services and policies select pods by them), and its
/// selector matches its own pod template.
std::vector<Finding> check_pod_labels(const Mesh& mesh);

/// Every Service has a selector that selects pods in its cluster, or is global and selects
/// pods in another cluster; every port it targets exists on each pod it selects.
std::vector<Finding> check_selectors(const Mesh& mesh);

/// Every address a container calls names a Service of its own cluster, on a port of that
/// Service; a Service whose pods run in other clusters is global there and in those clusters
/// (and shared); the addresses a server advertises (Kafka) pass the same test in every cluster
/// that calls it; no affinity annotation has a value Cilium mishandles.
std::vector<Finding> check_calls(const Mesh& mesh);

/// For every container of the calcmesh image: its command is a binary the image holds and the
/// build makes; `--print-config`, run with the container's environment, accepts every variable
/// it is given (so every ConfigMap key), listens on a non-loopback address, on the port its
/// containerPort and probes name, and reports the cluster the manifests are for. Also: every
/// ConfigMap is used by some container.
std::vector<Finding> check_binaries(const Mesh& mesh, const ImageSpec& image,
                                    const std::filesystem::path& bin_dir);

/// Cluster names and ids are valid and unique and match the manifests, pod CIDRs never
/// overlap, every native-routing CIDR covers all pod CIDRs, ClusterMesh NodePorts differ.
std::vector<Finding> check_cilium(const Mesh& mesh,
                                  const std::map<std::string, CiliumValues>& cilium,
                                  const std::vector<CiliumValues>& datapaths);

/// All of the above.
std::vector<Finding> check_deploy(const DeployInputs& inputs);

}  // namespace calcmesh::kube
