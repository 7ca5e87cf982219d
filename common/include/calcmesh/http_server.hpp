#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "calcmesh/asio.hpp"
#include "calcmesh/http.hpp"
#include "calcmesh/metrics.hpp"

namespace calcmesh {

/// A request handler. It receives the request by value and never throws: failures are
/// responses built with `error_response`.
using Handler = std::function<Task<Response>(Request)>;

/// Maps method and path to handlers. Exact paths win over prefixes; a known path with another
/// method answers 405 with an Allow header, an unknown path 404. HEAD is served by GET routes.
class Router {
  public:
    /// Routes `method path` exactly.
    void add(http::verb method, std::string path, Handler handler);
    /// Routes every path that starts with `prefix`; `route` names it in metrics ("/jobs/{id}").
    void add_prefix(http::verb method, std::string prefix, std::string route, Handler handler);

    /// The answer to a request and the route pattern that produced it ("unmatched" if none).
    struct Dispatched {
        std::string route;
        Response response;
    };
    /// Finds the handler for a request and runs it, or answers 404 or 405.
    Task<Dispatched> dispatch(Request request) const;

    /// Every route pattern, for metrics.
    std::vector<std::string> routes() const;

  private:
    struct Route {
        http::verb method;
        std::string path;
        std::string name;
        bool prefix;
        Handler handler;
    };
    std::vector<Route> routes_;
};

/// Limits and timeouts of an HTTP server.
struct HttpServerOptions {
    std::string address = "127.0.0.1";
    unsigned short port = 0;             ///< 0 picks a free port
    std::size_t body_limit = 64 * 1024;  ///< larger bodies get 413
    std::chrono::milliseconds idle_timeout{60'000};
    /// Open connections per io_context. Past it, an idle kept-alive connection is closed to
    /// make room; while every one is busy (handling a request, or new and waiting for its
    /// first), a new connection's request is answered 503 `overloaded` and the connection
    /// closed, for up to as many connections again at once; beyond those, new ones wait in the
    /// kernel's accept queue until one turns idle or closes. Each costs about 9 KiB while
    /// open: a client that keeps thousands of connections (an open-loop load generator while
    /// answers lag) would otherwise grow the memory.
    std::size_t max_connections = 1024;
    /// Once a connection is accepted, and on a kept-alive one once the first byte of its next
    /// request has arrived, the whole request must arrive within this, or the connection is
    /// closed: a client that sends slowly, or never finishes its header, cannot hold a
    /// connection for longer.
    std::chrono::milliseconds request_read_timeout{10'000};
    /// Requests handled at once per io_context (their handlers running, e.g. jobs waiting for
    /// a worker). Past it a request is answered 503 `overloaded` with `Retry-After` and not
    /// handled: when clients send faster than the service answers, the excess is refused at
    /// once instead of waiting in memory until it times out.
    std::size_t max_in_flight = 1024;
    /// Paths answered even past `max_in_flight` (health probes): a probe refused under load
    /// would make an orchestrator restart a service that is only busy.
    std::vector<std::string> always_admitted;
    std::string service_name;  ///< for logs and metrics
    bool access_log = true;    ///< one line per request on stderr
};

/// An HTTP/1.1 server with keep-alive, one coroutine per connection, on one or more
/// single-threaded io_contexts that share the port through SO_REUSEPORT. Pipelined requests
/// are answered in order, and the answers to requests that arrived together are written
/// together.
class HttpServer {
  public:
    HttpServer(HttpServerOptions options, Router router, MetricsRegistry& metrics);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    /// Binds one listener per io_context and starts accepting. Throws if the address is taken.
    void start(const std::vector<net::io_context*>& contexts);
    /// The bound port (useful with port 0).
    unsigned short port() const { return port_; }

    /// Stops accepting, closes idle connections and lets in-flight requests finish; their
    /// responses carry `Connection: close`. Thread-safe.
    void stop_accepting();
    /// Requests being handled right now: read, and their answers not written yet. Thread-safe.
    std::size_t in_flight() const;

  private:
    struct Connection;
    struct Listener;
    struct RouteMetrics;
    Task<void> accept_loop(std::shared_ptr<Listener> listener);
    /// Closes the oldest idle kept-alive connection of `listener`; false if there is none.
    bool close_one_idle(Listener& listener);
    struct Held;
    /// Whether a connection is served, or accepted past the cap to refuse its one request.
    enum class Admission { serve, refuse };
    Task<void> serve(tcp::socket socket, std::shared_ptr<Listener> listener, Admission admission);
    /// Reads the next request into `parser`, from the bytes already in `buffer` if they hold
    /// it, and otherwise writes the held answers before waiting for more. `read_deadline` is
    /// when the request must be whole; time_point::max() until its first byte arrives.
    Task<void> read_request(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                            http::request_parser<http::string_body>& parser, Connection& connection,
                            Held& held, std::chrono::steady_clock::time_point& read_deadline,
                            boost::system::error_code& ec);
    /// Writes the held answers, if any.
    Task<void> flush(beast::tcp_stream& stream, Connection& connection, Held& held,
                     boost::system::error_code& ec);
    void record(const std::string& route, unsigned status, std::chrono::nanoseconds elapsed);
    /// Whether `listener` must refuse the request just read as overloaded.
    bool must_shed(const Listener& listener, std::string_view target) const;

    HttpServerOptions options_;
    Router router_;
    MetricsRegistry& metrics_;
    std::map<std::string, std::unique_ptr<RouteMetrics>> route_metrics_;
    unsigned short port_ = 0;
    std::atomic<bool> stopping_{false};
    std::vector<std::shared_ptr<Listener>> listeners_;
    Counter& shed_;
};

}  // namespace calcmesh
