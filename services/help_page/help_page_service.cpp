#include "help_page_service.hpp"

#include <fmt/format.h>

#include "calcmesh/html.hpp"
#include "calcmesh/when_all.hpp"

namespace calcmesh::help_page {

namespace {

constexpr std::string_view kHead = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>calcmesh · help</title>
<style>
  body { font: 15px/1.5 system-ui, sans-serif; max-width: 50rem; margin: 2rem auto; color: #222; }
  section { border: 1px solid #d0d7de; border-radius: .4rem; padding: .2rem 1rem; margin: 1rem 0; }
  section.unavailable { border-color: #cf222e; background: #fff5f5; }
  dl { display: grid; grid-template-columns: 6rem 1fr; margin: .5rem 0; }
  dt { color: #57606a; }
  dd { margin: 0; }
</style>
</head>
<body>
<h1>calcmesh workers</h1>
<p>Submit jobs to job_submitter with <code>POST /submit</code> and a JSON body such as
<code>{"operation": "multiplication", "a": 6, "b": 7, "mechanism": "http"}</code>
(mechanism <code>http</code> or <code>kafka</code>). Each worker below describes itself.</p>
)html";

}  // namespace

void HelpPageConfig::add_to(ConfigParser& parser) {
    common.port = 8081;
    common.add_to(parser);
    workers.add_to(parser);
    parser.add("about-timeout-ms", about_timeout_ms, "Deadline for each worker's /about")
        ->check(whole_number(1u));
}

HelpPageService::HelpPageService(Runtime& runtime, const HelpPageConfig& config)
    : runtime_(runtime),
      workers_(config.workers.parse()),
      timeout_(config.about_timeout_ms),
      unavailable_(runtime.metrics().counter(
          "calcmesh_about_unavailable_total",
          "Worker /about fetches that failed or timed out while building the page.")) {}

void HelpPageService::add_routes(Router& router) {
    router.add(http::verb::get, "/",
               [this](Request request) { return handle_page(std::move(request)); });
}

Task<HelpPageService::Fragment> HelpPageService::fetch_about(Operation operation) {
    const auto name = worker_name(operation);
    const auto& url = workers_[static_cast<std::size_t>(operation)];
    auto response =
        co_await runtime_.client().send(http::verb::get, url, "/about", {}, {}, timeout_, name);
    std::string reason;
    if (!response) {
        reason = response.error().message;
    } else if (response.value().status != 200) {
        reason = name + " answered HTTP " + std::to_string(response.value().status);
    } else {
        co_return Fragment{std::move(response.value().body), true};
    }
    unavailable_.add();
    co_return Fragment{
        fmt::format(R"(<section class="worker unavailable" id="{0}">
  <h2>{0}</h2>
  <p><strong>unavailable</strong>: {1}</p>
  <dl><dt>url</dt><dd>{2}</dd></dl>
</section>
)",
                    html_escape(name), html_escape(reason), html_escape(url.to_string())),
        false};
}

Task<Response> HelpPageService::handle_page(Request /*request*/) {
    std::vector<Task<Fragment>> fetches;
    fetches.reserve(kAllOperations.size());
    for (const auto operation : kAllOperations) {
        fetches.push_back(fetch_about(operation));
    }
    const auto fragments = co_await when_all(std::move(fetches));
    std::string page(kHead);
    for (const auto& fragment : fragments) {
        page += fragment.html;
    }
    page += "</body>\n</html>\n";
    co_return text_response(200, std::move(page), "text/html; charset=utf-8");
}

}  // namespace calcmesh::help_page
