#include "calcmesh/command.hpp"
#include "calcmesh/lab/lab_command.hpp"

int main(int argc, char** argv) {
    CLI::App app{"calcmesh: a multi-cluster arithmetic service system, its lab and its tools",
                 "calcmesh"};
    calcmesh::add_lab_command(app);
    return calcmesh::run_commands(app, argc, argv);
}
