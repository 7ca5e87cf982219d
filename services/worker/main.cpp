#include "worker_service.hpp"

int main(int argc, char** argv) {
    using namespace calcmesh::worker;
    return calcmesh::service_main<WorkerService>(
        "worker", "calcmesh worker: computes one arithmetic operation over HTTP and Kafka", argc,
        argv, WorkerConfig{});
}
