#include "calcmesh/command.hpp"

int main(int argc, char** argv) {
    CLI::App app{"calcmesh: a multi-cluster arithmetic service system, its lab and its tools",
                 "calcmesh"};
    return calcmesh::run_commands(app, argc, argv);
}
