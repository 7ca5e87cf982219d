#include "serve.hpp"

#include <fmt/format.h>

#include <ctime>

#include "calcmesh/html.hpp"
#include "calcmesh/http_server.hpp"
#include "calcmesh/metrics.hpp"
#include "client.hpp"
#include "printer.hpp"
#include "service_map.hpp"

namespace calcmesh::observe {

namespace {

constexpr std::size_t kPageFlows = 25;

// The page fetches the map and the flows again every two seconds, so it follows the traffic
// without reloading (and without losing the scroll position).
constexpr const char* kPage = R"(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>calcmesh service map: lab {lab}</title>
<style>
  body {{ font-family: Helvetica, Arial, sans-serif; margin: 1.2em; color: #263238; }}
  h1 {{ font-size: 1.3em; margin: 0 0 .3em 0; }}
  #status {{ color: #546e7a; margin-bottom: .8em; }}
  #map svg {{ max-width: 100%; height: auto; }}
  table {{ border-collapse: collapse; font-family: monospace; font-size: 12px; width: 100%; }}
  td {{ padding: 2px 6px; border-bottom: 1px solid #eceff1; white-space: nowrap; }}
  .FORWARDED {{ color: #2e7d32; }} .DROPPED {{ color: #c62828; font-weight: bold; }}
  .AUDIT {{ color: #e67e22; font-weight: bold; }} .LOST {{ color: #c62828; }}
</style>
</head>
<body>
<h1>calcmesh service map &mdash; lab {lab}</h1>
<div id="status">loading&hellip;</div>
<div id="map"></div>
<h2 style="font-size:1.1em">Latest flows</h2>
<table id="flows"></table>
<script>
async function refresh() {{
  try {{
    const map = await fetch('map.svg', {{cache: 'no-store'}});
    if (!map.ok) throw new Error(await map.text());
    document.getElementById('map').innerHTML = await map.text();
    const data = await (await fetch('flows', {{cache: 'no-store'}})).json();
    const table = document.getElementById('flows');
    table.innerHTML = '';
    for (const flow of data.flows.slice().reverse()) {{
      const row = table.insertRow();
      const verdict = row.insertCell();
      verdict.textContent = flow.verdict;
      verdict.className = flow.verdict;
      row.insertCell().textContent = flow.line;
    }}
    document.getElementById('status').textContent =
      `${{data.status.flows_seen}} flows seen, ${{data.status.events_lost}} events lost, ` +
      `updated ${{new Date().toLocaleTimeString()}}`;
  }} catch (error) {{
    document.getElementById('status').textContent = 'collector unreachable: ' + error.message;
  }}
}}
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
)";

std::string title(const std::string& lab) {
    const auto now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    char text[16];
    std::strftime(text, sizeof(text), "%H:%M:%S", &local);
    return fmt::format("calcmesh service map, lab {} ({})", lab, text);
}

Task<Response> page(std::string lab, Request) {
    co_return text_response(200, fmt::format(kPage, fmt::arg("lab", html_escape(lab))),
                            "text/html; charset=utf-8");
}

Task<Response> map_svg(std::string lab, Request) {
    try {
        const auto map =
            ServiceMap::from_json(ask_collector(lab, {{"map", nlohmann::json::object()}}));
        co_return text_response(200, render_dot(map.to_dot(title(lab)), "svg"), "image/svg+xml");
    } catch (const std::exception& error) {
        co_return text_response(503, error.what(), "text/plain");
    }
}

Task<Response> flows(std::string lab, Request) {
    try {
        nlohmann::json lines = nlohmann::json::array();
        ask_collector(lab, {{"flows", {{"last", kPageFlows}}}}, [&](const nlohmann::json& line) {
            if (line.contains("flow")) {
                const auto flow = flow_from_json(line);
                lines.push_back(
                    {{"verdict", to_string(flow.verdict)}, {"line", compact_line(flow, false)}});
            } else {
                lines.push_back(
                    {{"verdict", "LOST"}, {"line", compact_line(lost_from_json(line))}});
            }
            return true;
        });
        const auto status = ask_collector(lab, {{"status", nlohmann::json::object()}});
        co_return json_response(200, {{"flows", lines}, {"status", status}});
    } catch (const std::exception& error) {
        co_return json_response(503, {{"error", error.what()}});
    }
}

}  // namespace

int run_serve(const ServeOptions& options,
              const std::function<void(const std::string&)>& on_listening) {
    // Fail early and clearly if there is no collector to show.
    ask_collector(options.lab, {{"status", nlohmann::json::object()}});
    Router router;
    const auto lab = options.lab;
    router.add(http::verb::get, "/",
               [lab](Request request) { return page(lab, std::move(request)); });
    router.add(http::verb::get, "/map.svg",
               [lab](Request request) { return map_svg(lab, std::move(request)); });
    router.add(http::verb::get, "/flows",
               [lab](Request request) { return flows(lab, std::move(request)); });
    MetricsRegistry metrics;
    HttpServerOptions server_options;
    server_options.address = options.address;
    server_options.port = options.port;
    server_options.service_name = "observe";
    server_options.access_log = false;
    net::io_context io;
    HttpServer server(server_options, std::move(router), metrics);
    server.start({&io});
    on_listening(fmt::format("http://{}:{}/", options.address, server.port()));
    net::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code&, int) { io.stop(); });
    io.run();
    return 0;
}

}  // namespace calcmesh::observe
