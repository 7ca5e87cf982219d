#include "log_collector_service.hpp"

int main(int argc, char** argv) {
    using namespace calcmesh::log_collector;
    return calcmesh::service_main<LogCollectorService>(
        "log_collector", "calcmesh log_collector: durable log records of every computation", argc,
        argv, LogCollectorConfig{});
}
