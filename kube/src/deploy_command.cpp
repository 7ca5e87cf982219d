#include "calcmesh/kube/deploy_command.hpp"

#include <filesystem>
#include <iostream>
#include <memory>

#include "calcmesh/command.hpp"
#include "calcmesh/kube/deploy_check.hpp"

namespace calcmesh::kube {

namespace {

struct CheckOptions {
    std::string rendered;
    std::string cilium = "deploy/cilium";
    std::string dockerfile = "deploy/Dockerfile";
    std::string bin;
};

/// The folder of the running calcmesh binary, where the build puts every other binary too.
std::string own_directory() {
    std::error_code error;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", error);
    return error ? std::string(".") : self.parent_path().string();
}

int run_check(const CheckOptions& options) {
    auto inputs = load_deploy_inputs(options.rendered, options.cilium, options.dockerfile,
                                     options.bin.empty() ? own_directory() : options.bin);
    if (!inputs) {
        std::cerr << "calcmesh deploy check: " << inputs.error().message << '\n';
        return 1;
    }
    const auto findings = check_deploy(inputs.value());
    for (const Finding& finding : findings) {
        std::cout << "error: " << finding.to_string() << '\n';
    }
    std::size_t objects = 0;
    for (const Cluster& cluster : inputs.value().mesh.clusters) {
        objects += cluster.objects.size();
    }
    std::cout << "calcmesh deploy check: " << inputs.value().mesh.clusters.size() << " clusters, "
              << objects << " objects: " << findings.size() << " error"
              << (findings.size() == 1 ? "" : "s") << '\n';
    return findings.empty() ? 0 : 1;
}

}  // namespace

void add_deploy_command(CLI::App& app) {
    auto* deploy = app.add_subcommand("deploy", "Check the Kubernetes deployment kit offline");
    deploy->require_subcommand(1);
    auto options = std::make_shared<CheckOptions>();
    auto* check = add_command(
        *deploy, "check",
        "Cross-check rendered manifests, Cilium values, the Dockerfile and the built binaries",
        [options] { return run_check(*options); });
    check
        ->add_option("--rendered", options->rendered,
                     "Folder with one rendered <cluster>.yaml per cluster (kustomize build)")
        ->required()
        ->check(CLI::ExistingDirectory);
    check->add_option("--cilium", options->cilium, "Folder of the Cilium Helm values")
        ->capture_default_str()
        ->check(CLI::ExistingDirectory);
    check->add_option("--dockerfile", options->dockerfile, "The image's Dockerfile")
        ->capture_default_str()
        ->check(CLI::ExistingFile);
    check->add_option("--bin", options->bin,
                      "Folder of the built binaries (default: the folder of this calcmesh)");
}

}  // namespace calcmesh::kube
