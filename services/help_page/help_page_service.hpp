#pragma once

#include <array>

#include "calcmesh/service.hpp"
#include "calcmesh/worker_urls.hpp"

namespace calcmesh::help_page {

/// Configuration of help_page.
struct HelpPageConfig {
    CommonConfig common;
    WorkerUrls workers;
    unsigned about_timeout_ms = 1'000;

    void add_to(ConfigParser& parser);
};

/// help_page: one HTML page made of every worker's `/about` fragment, fetched concurrently on
/// each request. A worker that does not answer in time is shown as unavailable; the page is
/// still served.
class HelpPageService final : public Application {
  public:
    HelpPageService(Runtime& runtime, const HelpPageConfig& config);
    void add_routes(Router& router) override;

  private:
    /// One worker's part of the page.
    struct Fragment {
        std::string html;
        bool available = false;
    };
    Task<Response> handle_page(Request request);
    Task<Fragment> fetch_about(Operation operation);

    Runtime& runtime_;
    std::array<Url, 4> workers_;
    std::chrono::milliseconds timeout_;
    Counter& unavailable_;
};

}  // namespace calcmesh::help_page
