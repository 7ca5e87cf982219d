#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "calcmesh/asio.hpp"
#include "calcmesh/config.hpp"
#include "calcmesh/http_client.hpp"
#include "calcmesh/http_server.hpp"
#include "calcmesh/metrics.hpp"

namespace calcmesh {

/// Settings every service has, under the same keys.
struct CommonConfig {
    std::string listen_address = "127.0.0.1";
    unsigned short port = 0;
    unsigned threads = 0;                    ///< 0: one per usable CPU (see usable_cpus)
    unsigned http_pipeline_depth = 16;       ///< requests one outgoing connection may carry at once
    unsigned max_connections = 1024;         ///< open incoming connections per thread
    unsigned max_requests_in_flight = 1024;  ///< per thread; past it 503 overloaded
    unsigned request_read_timeout_ms = 10'000;  ///< a begun request must arrive whole within it
    std::string cluster = "local";
    std::string node;      ///< defaults to the host name
    std::string instance;  ///< defaults to "<service>-<host name>-<pid>"
    std::string log_level = "info";
    bool access_log = true;
    unsigned shutdown_timeout_ms = 10'000;
    std::string port_file;  ///< if set, the bound port is written there once listening

    /// Registers the keys: listen-address, port, threads, http-pipeline-depth, max-connections,
    /// max-requests-in-flight, request-read-timeout-ms, cluster, node, instance, log-level,
    /// access-log, shutdown-timeout-ms, port-file.
    void add_to(ConfigParser& parser);
    /// Fills the defaults that depend on the machine.
    void resolve_defaults(const std::string& service);
};

/// The CPUs this process may use: those of its CPU affinity, capped by the CPU limit of its
/// cgroup (v2 `cpu.max` of its own cgroup and of every parent; a container's
/// `resources.limits.cpu`), rounded up; at least 1.
unsigned usable_cpus();

/// `cpus` capped by a cgroup v2 `cpu.max` text, "<quota> <period>" in microseconds, rounded up
/// to whole CPUs; `cpus` unchanged when the text is "max <period>" or not a limit.
unsigned cpus_within_limit(unsigned cpus, std::string_view cpu_max);

/// Whether a service can serve, and the state of each dependency, for `GET /readyz`.
struct Readiness {
    bool ready = true;
    nlohmann::json dependencies = nlohmann::json::object();
};

/// What a service plugs into the runtime: its routes and its background work.
class Application {
  public:
    virtual ~Application() = default;
    /// Adds the service's routes; /healthz, /readyz and /metrics are added by the runtime.
    virtual void add_routes(Router& router) = 0;
    /// Starts background work once the server listens.
    virtual void start() {}
    /// Stops background work after in-flight requests have drained, finishing what it can
    /// before `deadline`. Runs as a coroutine on the first loop.
    virtual Task<void> stop(std::chrono::steady_clock::time_point deadline);
    /// Called on every `GET /readyz`.
    virtual Readiness readiness() const { return {}; }
};

/// The process around a service: event loops (one single-threaded io_context per thread),
/// metrics, the HTTP server with the common routes, signal handling and graceful shutdown.
class Runtime {
  public:
    Runtime(std::string service, CommonConfig config);
    ~Runtime();

    const std::string& service() const { return service_; }
    const CommonConfig& config() const { return config_; }
    MetricsRegistry& metrics() { return metrics_; }

    /// The first loop's executor, for background coroutines.
    net::any_io_executor executor();
    /// How many event loops there are, and the executor of each (0 is the first).
    std::size_t loop_count() const { return loops_.size(); }
    net::any_io_executor loop_executor(std::size_t loop);
    /// The index of the loop the caller runs on, or nothing off this runtime's loops.
    std::optional<std::size_t> current_loop() const;
    /// The HTTP client of the loop the caller runs on (a client is not thread-safe: each loop
    /// has its own). Throws std::logic_error when called off this runtime's loops.
    HttpClient& client();

    /// Starts the server and the application, then serves until SIGTERM or SIGINT, drains
    /// and stops. Returns the process exit code. Throws if the port cannot be bound.
    int run(Application& application);

  private:
    struct Loop;
    Task<void> shut_down(Application& application);
    void add_common_routes(Router& router, Application& application);
    Task<Response> healthz();
    Task<Response> readyz(Application& application);
    Task<Response> render_metrics();

    std::string service_;
    CommonConfig config_;
    MetricsRegistry metrics_;
    std::vector<std::unique_ptr<Loop>> loops_;
    std::unique_ptr<HttpServer> server_;
    std::atomic<bool> stopping_{false};
};

/// Sets up spdlog on stderr with the service name and level, one line per event.
void setup_logging(const std::string& service, const std::string& level);

/// The body of every service's `main`: parses the configuration (`Config` has `CommonConfig
/// common` and `add_to(ConfigParser&)`), builds `App(runtime, config)` and runs it. Start-up
/// failures are logged and give exit code 1.
template <class App, class Config>
int service_main(const std::string& service, const std::string& description, int argc, char** argv,
                 Config config) {
    ConfigParser parser(service, description);
    config.add_to(parser);
    if (auto exit_code = parser.parse(argc, argv)) {
        return *exit_code;
    }
    // A configuration may name the process more precisely, e.g. "division_worker".
    const std::string name = [&]() -> std::string {
        if constexpr (requires { config.service_name(); }) {
            return config.service_name();
        } else {
            return service;
        }
    }();
    config.common.resolve_defaults(name);
    setup_logging(name, config.common.log_level);
    try {
        Runtime runtime(name, config.common);
        App app(runtime, config);
        return runtime.run(app);
    } catch (const std::exception& error) {
        spdlog::critical("event=startup_failed error=\"{}\"", error.what());
        return 1;
    }
}

}  // namespace calcmesh
