#include "help_page_service.hpp"

int main(int argc, char** argv) {
    using namespace calcmesh::help_page;
    return calcmesh::service_main<HelpPageService>(
        "help_page", "calcmesh help_page: one page built from every worker's /about", argc, argv,
        HelpPageConfig{});
}
