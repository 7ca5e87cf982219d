#include "calcmesh/service.hpp"

#include <sched.h>
#include <spdlog/sinks/base_sink.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "calcmesh/arithmetic.hpp"

namespace calcmesh {

namespace {

std::string host_name() {
    std::array<char, 256> buffer{};
    if (gethostname(buffer.data(), buffer.size() - 1) != 0) {
        return "unknown";
    }
    return buffer.data();
}

void write_port_file(const std::string& path, unsigned short port) {
    const std::string temporary = path + ".tmp";
    {
        std::ofstream out(temporary);
        out << port << '\n';
        if (!out) {
            throw std::runtime_error("cannot write port file " + temporary);
        }
    }
    std::filesystem::rename(temporary, path);
}

}  // namespace

void CommonConfig::add_to(ConfigParser& parser) {
    parser.add("listen-address", listen_address, "Address to listen on");
    parser.add("port", port, "TCP port to listen on (0 picks a free one)");
    parser
        .add("threads", threads,
             "Event-loop threads; 0: one per CPU this process may use (its CPU affinity and "
             "cgroup CPU limit)")
        ->check(whole_number(0u, 64u));
    parser
        .add("http-pipeline-depth", http_pipeline_depth,
             "Requests to one upstream that may share a connection at once (HTTP/1.1 "
             "pipelining); 1 sends one request per connection at a time")
        ->check(whole_number(1u, 1024u));
    parser
        .add("max-connections", max_connections,
             "Open incoming connections per thread; past it idle ones are closed, or new ones wait")
        ->check(whole_number(1u, 1'000'000u));
    parser
        .add("max-requests-in-flight", max_requests_in_flight,
             "Requests handled at once per thread; past it 503 overloaded with Retry-After "
             "(health probes excepted)")
        ->check(whole_number(1u, 1'000'000u));
    parser
        .add("request-read-timeout-ms", request_read_timeout_ms,
             "A request must arrive whole within this once begun (on a new connection: once "
             "accepted); otherwise the connection is closed")
        ->check(whole_number(1u, 3'600'000u));
    parser.add("cluster", cluster, "Cluster name reported in results and logs");
    parser.add("node", node, "Node name reported in results and logs (default: host name)");
    parser.add("instance", instance,
               "Instance id of this process (default: <service>-<host name>-<pid>)");
    parser.add("log-level", log_level, "trace, debug, info, warn, error or critical")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical"}));
    parser.add("access-log", access_log, "Log one line per HTTP request");
    parser.add("shutdown-timeout-ms", shutdown_timeout_ms,
               "On SIGTERM, how long in-flight work may take to finish");
    parser.add("port-file", port_file, "Write the bound port to this file once listening");
}

void CommonConfig::resolve_defaults(const std::string& service) {
    if (node.empty()) {
        node = host_name();
    }
    if (instance.empty()) {
        instance = service + "-" + host_name() + "-" + std::to_string(getpid());
    }
    if (threads == 0) {
        // A loop per core: a busy service uses every core it is given, and while one loop's
        // thread waits for a core, the requests on the other loops go on.
        threads = std::min(usable_cpus(), 64u);
    }
}

unsigned cpus_within_limit(unsigned cpus, std::string_view cpu_max) {
    const auto space = cpu_max.find(' ');
    if (space == std::string_view::npos) {
        return cpus;
    }
    const auto quota = parse_integer(cpu_max.substr(0, space), "quota");
    const auto period = parse_integer(cpu_max.substr(space + 1), "period");
    if (!quota || !period || quota.value() <= 0 || period.value() <= 0) {
        return cpus;  // "max <period>": no limit
    }
    const auto limit = static_cast<unsigned>(
        std::max(std::int64_t{1}, (quota.value() + period.value() - 1) / period.value()));
    return std::min(cpus, limit);
}

unsigned usable_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    unsigned cpus = sched_getaffinity(0, sizeof set, &set) == 0
                        ? static_cast<unsigned>(CPU_COUNT(&set))
                        : std::max(1u, std::thread::hardware_concurrency());
    // The process's cgroup v2 path is the "0::" line of /proc/self/cgroup; a limit may be set
    // on it or on any parent.
    std::ifstream membership("/proc/self/cgroup");
    std::string line;
    while (std::getline(membership, line)) {
        if (!line.starts_with("0::")) {
            continue;
        }
        const std::filesystem::path root = "/sys/fs/cgroup";
        const auto own = std::filesystem::path(line.substr(3)).relative_path();
        for (auto group = own.empty() ? root : root / own;; group = group.parent_path()) {
            std::ifstream limit(group / "cpu.max");
            std::string cpu_max;
            if (std::getline(limit, cpu_max)) {
                cpus = cpus_within_limit(cpus, cpu_max);
            }
            if (group == root || !group.has_relative_path()) {
                break;
            }
        }
    }
    return std::max(1u, cpus);
}

namespace {

/// Writes log lines to a fully buffered stderr. spdlog's own stderr sink flushes every line,
/// which under load costs one write system call per request for the access log alone (about
/// 15 % of job_submitter's CPU time); buffered lines go out in a few writes.
class BufferedStderrSink final : public spdlog::sinks::base_sink<std::mutex> {
  public:
    BufferedStderrSink() {
        // Static: stderr keeps using the buffer until the process exits.
        static std::array<char, 64 * 1024> buffer{};
        std::setvbuf(stderr, buffer.data(), _IOFBF, buffer.size());
    }
    ~BufferedStderrSink() override { std::fflush(stderr); }

  protected:
    void sink_it_(const spdlog::details::log_msg& message) override {
        spdlog::memory_buf_t line;
        formatter_->format(message, line);
        std::fwrite(line.data(), 1, line.size(), stderr);
        if (message.time - last_flush_ >= std::chrono::milliseconds(100)) {
            flush_();
        }
    }
    void flush_() override {
        std::fflush(stderr);
        last_flush_ = spdlog::log_clock::now();
    }

  private:
    spdlog::log_clock::time_point last_flush_{};
};

}  // namespace

void setup_logging(const std::string& service, const std::string& level) {
    auto logger = std::make_shared<spdlog::logger>(service, std::make_shared<BufferedStderrSink>());
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %n %v", spdlog::pattern_time_type::utc);
    logger->set_level(spdlog::level::from_str(level));
    // Warnings and errors are written at once; other lines within 100 ms under traffic and
    // within a second when it is quiet.
    logger->flush_on(spdlog::level::warn);
    spdlog::flush_every(std::chrono::seconds(1));
    spdlog::set_default_logger(std::move(logger));
}

Task<void> Application::stop(std::chrono::steady_clock::time_point /*deadline*/) {
    co_return;
}

/// One event loop: a single-threaded io_context and the HTTP client that belongs to it.
struct Runtime::Loop {
    explicit Loop(std::size_t pipeline_depth) : client(context.get_executor(), pipeline_depth) {}

    net::io_context context{1};
    net::executor_work_guard<net::io_context::executor_type> work{context.get_executor()};
    HttpClient client;
    std::thread thread;
};

namespace {

/// The loop a thread runs, set by the thread itself for as long as it runs it.
struct CurrentLoop {
    const Runtime* runtime = nullptr;
    std::size_t index = 0;
};
thread_local CurrentLoop current_loop_of_thread;

/// Marks the calling thread as running `index` of `runtime` until the scope ends.
class RunningLoop {
  public:
    RunningLoop(const Runtime& runtime, std::size_t index) {
        current_loop_of_thread = {&runtime, index};
    }
    ~RunningLoop() { current_loop_of_thread = {}; }
    RunningLoop(const RunningLoop&) = delete;
    RunningLoop& operator=(const RunningLoop&) = delete;
};

}  // namespace

Runtime::Runtime(std::string service, CommonConfig config)
    : service_(std::move(service)), config_(std::move(config)) {
    for (unsigned i = 0; i < config_.threads; ++i) {
        loops_.push_back(std::make_unique<Loop>(config_.http_pipeline_depth));
    }
    metrics_.gauge("calcmesh_info", "Constant 1, labelled with what this process is.",
                   [] { return 1.0; },
                   {{"service", service_},
                    {"instance", config_.instance},
                    {"cluster", config_.cluster},
                    {"node", config_.node}});
}

Runtime::~Runtime() {
    for (auto& loop : loops_) {
        loop->context.stop();
        if (loop->thread.joinable()) {
            loop->thread.join();
        }
    }
}

net::any_io_executor Runtime::executor() {
    return loops_.front()->context.get_executor();
}

net::any_io_executor Runtime::loop_executor(std::size_t loop) {
    return loops_.at(loop)->context.get_executor();
}

std::optional<std::size_t> Runtime::current_loop() const {
    if (current_loop_of_thread.runtime != this) {
        return std::nullopt;
    }
    return current_loop_of_thread.index;
}

HttpClient& Runtime::client() {
    const auto loop = current_loop();
    if (!loop) {
        // Another loop's client would be used from two threads at once.
        throw std::logic_error(
            "Runtime::client() called off the event loops: an HTTP client belongs to one loop; "
            "call it from a coroutine running on a loop");
    }
    return loops_[*loop]->client;
}

void Runtime::add_common_routes(Router& router, Application& application) {
    router.add(http::verb::get, "/healthz", [this](const Request&) { return healthz(); });
    router.add(http::verb::get, "/readyz",
               [this, &application](const Request&) { return readyz(application); });
    router.add(http::verb::get, "/metrics", [this](const Request&) { return render_metrics(); });
}

Task<Response> Runtime::healthz() {
    co_return json_response(200, {{"status", "ok"}, {"service", service_}});
}

Task<Response> Runtime::readyz(Application& application) {
    auto readiness = application.readiness();
    const bool ready = readiness.ready && !stopping_;
    co_return json_response(ready ? 200 : 503,
                            {{"status", ready ? "ready" : (stopping_ ? "stopping" : "not_ready")},
                             {"service", service_},
                             {"instance", config_.instance},
                             {"dependencies", std::move(readiness.dependencies)}});
}

Task<Response> Runtime::render_metrics() {
    co_return text_response(200, metrics_.render(), "text/plain; version=0.0.4");
}

int Runtime::run(Application& application) {
    Router router;
    application.add_routes(router);
    add_common_routes(router, application);

    HttpServerOptions options;
    options.address = config_.listen_address;
    options.port = config_.port;
    options.service_name = service_;
    options.access_log = config_.access_log;
    options.max_connections = config_.max_connections;
    options.max_in_flight = config_.max_requests_in_flight;
    options.request_read_timeout = std::chrono::milliseconds(config_.request_read_timeout_ms);
    options.always_admitted = {"/healthz", "/readyz", "/metrics"};
    server_ = std::make_unique<HttpServer>(options, std::move(router), metrics_);

    std::vector<net::io_context*> contexts;
    contexts.reserve(loops_.size());
    for (auto& loop : loops_) {
        contexts.push_back(&loop->context);
    }
    server_->start(contexts);
    application.start();
    if (!config_.port_file.empty()) {
        write_port_file(config_.port_file, server_->port());
    }
    spdlog::info("event=listening address={} port={} threads={} instance={}",
                 config_.listen_address, server_->port(), loops_.size(), config_.instance);

    net::signal_set signals(loops_.front()->context, SIGINT, SIGTERM);
    signals.async_wait([this, &application](const boost::system::error_code& ec, int signal) {
        if (!ec) {
            spdlog::info("event=stopping signal={}", signal);
            net::co_spawn(loops_.front()->context, shut_down(application), net::detached);
        }
    });

    for (std::size_t i = 1; i < loops_.size(); ++i) {
        auto* loop = loops_[i].get();
        loop->thread = std::thread([this, loop, i] {
            const RunningLoop running(*this, i);
            loop->context.run();
        });
    }
    {
        // The first loop runs on the main thread.
        const RunningLoop running(*this, 0);
        loops_.front()->context.run();
    }
    for (auto& loop : loops_) {
        loop->context.stop();
        if (loop->thread.joinable()) {
            loop->thread.join();
        }
    }
    spdlog::info("event=stopped");
    return 0;
}

Task<void> Runtime::shut_down(Application& application) {
    stopping_ = true;
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(config_.shutdown_timeout_ms);
    server_->stop_accepting();
    net::steady_timer timer(co_await net::this_coro::executor);
    while (server_->in_flight() > 0 && std::chrono::steady_clock::now() < deadline) {
        timer.expires_after(std::chrono::milliseconds(5));
        co_await timer.async_wait(net::use_awaitable);
    }
    if (server_->in_flight() > 0) {
        spdlog::warn("event=drain_timeout in_flight={}", server_->in_flight());
    }
    co_await application.stop(deadline);
    for (auto& loop : loops_) {
        loop->work.reset();
        loop->context.stop();
    }
}

}  // namespace calcmesh
