#include "submitter_service.hpp"

int main(int argc, char** argv) {
    using namespace calcmesh::job_submitter;
    return calcmesh::service_main<SubmitterService>(
        "job_submitter",
        "calcmesh job_submitter: takes arithmetic jobs and has workers compute them", argc, argv,
        SubmitterConfig{});
}
