#include <filesystem>

#include "calcmesh/bench/command.hpp"
#include "calcmesh/command.hpp"
#include "calcmesh/kube/deploy_command.hpp"
#include "calcmesh/lab/lab_command.hpp"
#include "calcmesh/observe/observe_command.hpp"
#include "calcmesh/policy/policy_command.hpp"
#include "commands.hpp"

int main(int argc, char** argv) {
    CLI::App app{"calcmesh: a multi-cluster arithmetic service system, its lab and its tools",
                 "calcmesh"};
    const auto own_directory = std::filesystem::canonical("/proc/self/exe").parent_path().string();
    calcmesh::tools::add_up_command(app, own_directory);
    calcmesh::tools::add_client_commands(app);
    calcmesh::bench::add_bench_command(app);
    calcmesh::add_observe_commands(app, calcmesh::add_lab_command(app));
    calcmesh::kube::add_deploy_command(app);
    calcmesh::policy::add_policy_command(app);
    return calcmesh::run_commands(app, argc, argv);
}
