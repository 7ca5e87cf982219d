#include "calcmesh/command.hpp"
#include "calcmesh/kube/deploy_command.hpp"

int main(int argc, char** argv) {
    CLI::App app{"calcmesh: a multi-cluster arithmetic service system, its lab and its tools",
                 "calcmesh"};
    calcmesh::kube::add_deploy_command(app);
    return calcmesh::run_commands(app, argc, argv);
}
