#include "calcmesh/http_server.hpp"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <exception>
#include <list>
#include <utility>

namespace calcmesh {

// ---- Router ----------------------------------------------------------------------------------

void Router::add(http::verb method, std::string path, Handler handler) {
    std::string name = path;
    routes_.push_back(Route{method, std::move(path), std::move(name), false, std::move(handler)});
}

void Router::add_prefix(http::verb method, std::string prefix, std::string route, Handler handler) {
    routes_.push_back(Route{method, std::move(prefix), std::move(route), true, std::move(handler)});
}

std::vector<std::string> Router::routes() const {
    std::vector<std::string> names;
    for (const auto& route : routes_) {
        if (std::find(names.begin(), names.end(), route.name) == names.end()) {
            names.push_back(route.name);
        }
    }
    return names;
}

Task<Router::Dispatched> Router::dispatch(Request request) const {
    const auto target = request.message.target();
    const auto question = target.find('?');
    request.path = std::string(target.substr(0, question));
    if (question != std::string_view::npos) {
        auto query = parse_form(target.substr(question + 1));
        if (!query) {
            co_return Dispatched{
                "unmatched", error_response({ErrorCode::invalid_field,
                                             "malformed query string: " + query.error().message})};
        }
        request.query = std::move(query).value();
    }
    const auto method =
        request.message.method() == http::verb::head ? http::verb::get : request.message.method();

    const Route* match = nullptr;
    bool path_known = false;
    std::string allowed;
    // Exact routes first, then the longest prefix.
    for (const bool prefix : {false, true}) {
        for (const auto& route : routes_) {
            const bool path_matches =
                route.prefix == prefix && (prefix ? request.path.starts_with(route.path) &&
                                                        request.path.size() > route.path.size()
                                                  : request.path == route.path);
            if (!path_matches) {
                continue;
            }
            path_known = true;
            allowed += (allowed.empty() ? "" : ", ") + std::string(http::to_string(route.method));
            if (route.method == method && (!match || match->path.size() < route.path.size())) {
                match = &route;
            }
        }
        if (path_known) {
            break;
        }
    }
    if (match) {
        // Await into a variable first: g++ 12 destroys a temporary twice when co_await
        // appears inside a braced initializer.
        auto response = co_await match->handler(std::move(request));
        co_return Dispatched{match->name, std::move(response)};
    }
    if (path_known) {
        auto response =
            error_response({ErrorCode::method_not_allowed,
                            "method " + std::string(request.message.method_string()) +
                                " is not allowed on " + request.path + "; allowed: " + allowed});
        response.set(http::field::allow, allowed);
        co_return Dispatched{"unmatched", std::move(response)};
    }
    co_return Dispatched{"unmatched",
                         error_response({ErrorCode::not_found, "no route for " + request.path})};
}

// ---- HttpServer --------------------------------------------------------------------------------

/// The acceptor of one io_context and the connections it opened, all on that io_context's
/// thread. Each connection's coroutine holds its listener, so that what a connection does as it
/// ends (leave the list, stop counting its requests) stays valid when its io_context destroys
/// it after the server is gone, as a service's loops do at exit.
struct HttpServer::Listener {
    explicit Listener(net::io_context& context) : acceptor(context), wake(context) {}
    tcp::acceptor acceptor;
    std::size_t open = 0;
    /// Connections accepted past the cap only to refuse their request: at most
    /// `max_connections` more, each open for one short exchange.
    std::size_t refusing = 0;
    bool waiting = false;                ///< for a connection to turn idle or close, at the cap
    net::steady_timer wake;              ///< cancelled to end that wait
    std::list<Connection*> connections;  ///< the open ones, oldest first
    /// Requests read whose answers are not written yet; `in_flight()` reads it from any thread.
    std::atomic<std::size_t> in_flight{0};
    /// Requests whose handlers run now: what `max_in_flight` bounds. Answers waiting to be
    /// written do not count, so that refusals themselves never crowd out the work admitted.
    std::size_t handling = 0;
};

/// A live connection, so that `stop_accepting` can close the idle ones. Touched only on its
/// io_context's thread. It is in its listener's list exactly as long as it exists, however
/// `serve` ends (an exception included): the list must never hold a connection that is gone.
struct HttpServer::Connection {
    Connection(beast::tcp_stream& stream, Listener& listener)
        : stream(&stream), listener(&listener) {
        listener.connections.push_back(this);
    }
    ~Connection() { listener->connections.remove(this); }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    beast::tcp_stream* stream;
    Listener* listener;
    bool busy = false;
    /// It has answered a request and waits for the next one: a kept-alive connection that a
    /// client expects the server may close. A new connection has not: its first request may be
    /// on its way, and closing it would lose that request, which the client cannot tell from
    /// one the server saw.
    bool answered = false;
    /// Bytes of a request came and the request is not whole yet. A client sends a request at
    /// once, so at the cap the oldest such connection is a slow sender (a slowloris), closed
    /// for a new client rather than let it keep its place until its read timeout.
    bool partial = false;
};

struct HttpServer::RouteMetrics {
    Histogram* latency = nullptr;
    std::array<std::atomic<Counter*>, 600> by_status{};
};

HttpServer::HttpServer(HttpServerOptions options, Router router, MetricsRegistry& metrics)
    : options_(std::move(options)),
      router_(std::move(router)),
      metrics_(metrics),
      shed_(metrics.counter("calcmesh_http_requests_shed_total",
                            "Requests answered 503 overloaded without being handled, because "
                            "max-requests-in-flight were being handled or max-connections were "
                            "open and busy.")) {
    auto names = router_.routes();
    names.push_back("unmatched");
    for (const auto& name : names) {
        auto route = std::make_unique<RouteMetrics>();
        route->latency =
            &metrics_.histogram("calcmesh_http_request_duration_seconds",
                                "Time to handle an HTTP request, by route.", {{"route", name}});
        route_metrics_.emplace(name, std::move(route));
    }
}

HttpServer::~HttpServer() = default;

void HttpServer::start(const std::vector<net::io_context*>& contexts) {
    const auto address = net::ip::make_address(options_.address);
    unsigned short port = options_.port;
    for (auto* context : contexts) {
        auto listener = std::make_shared<Listener>(*context);
        auto& acceptor = listener->acceptor;
        const tcp::endpoint endpoint{address, port};
        acceptor.open(endpoint.protocol());
        acceptor.set_option(net::socket_base::reuse_address(true));
        acceptor.set_option(net::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true));
        acceptor.bind(endpoint);
        acceptor.listen(net::socket_base::max_listen_connections);
        port = acceptor.local_endpoint().port();
        listeners_.push_back(listener);
    }
    port_ = port;
    for (auto& listener : listeners_) {
        net::co_spawn(listener->acceptor.get_executor(), accept_loop(listener), net::detached);
    }
}

void HttpServer::stop_accepting() {
    if (stopping_.exchange(true)) {
        return;
    }
    for (auto& listener : listeners_) {
        // On the listener's thread, where its connections run.
        net::post(listener->acceptor.get_executor(), [listener] {
            boost::system::error_code ignored;
            listener->acceptor.close(ignored);
            listener->wake.cancel();
            for (auto* connection : listener->connections) {
                if (!connection->busy) {
                    connection->stream->cancel();
                }
            }
        });
    }
}

std::size_t HttpServer::in_flight() const {
    std::size_t total = 0;
    for (const auto& listener : listeners_) {
        total += listener->in_flight.load();
    }
    return total;
}

bool HttpServer::close_one_idle(Listener& listener) {
    // The oldest first: a kept-alive idle one, else one that is still sending a request.
    const auto close = [](Connection& connection) {
        connection.busy = true;  // closing: not to be picked again
        connection.stream->cancel();
    };
    for (auto* connection : listener.connections) {
        if (!connection->busy && connection->answered && !connection->partial) {
            close(*connection);
            return true;
        }
    }
    for (auto* connection : listener.connections) {
        if (!connection->busy && connection->partial) {
            close(*connection);
            return true;
        }
    }
    return false;
}

namespace {

/// A connection whose coroutine threw ended without answering; handlers must not throw, so
/// this is a bug to be seen in the log rather than a connection that silently closes.
void log_connection_failure(const std::exception_ptr& failure) {
    try {
        std::rethrow_exception(failure);
    } catch (const std::exception& error) {
        spdlog::error("event=connection_failed error=\"{}\"", error.what());
    } catch (...) {
        spdlog::error("event=connection_failed error=\"unknown exception\"");
    }
}

}  // namespace

Task<void> HttpServer::accept_loop(std::shared_ptr<Listener> listener) {
    auto& acceptor = listener->acceptor;
    const auto executor = acceptor.get_executor();
    while (!stopping_) {
        boost::system::error_code ec;
        tcp::socket socket =
            co_await acceptor.async_accept(net::redirect_error(net::use_awaitable, ec));
        if (ec) {
            if (ec == net::error::operation_aborted || !acceptor.is_open()) {
                break;
            }
            spdlog::warn("event=accept_failed error=\"{}\"", ec.message());
            continue;
        }
        // Past the cap a new client comes first: an idle kept-alive connection is closed, as
        // HTTP clients must expect, or else the oldest one still sending its request. While every
        // connection is busy, the new one's request is refused at once (503 overloaded, then
        // closed), as a request past max-requests-in-flight is: left in the kernel's accept queue
        // it would wait, unseen, until the client gives up. Only past as many refusing connections
        // again does a new one wait (and the ones behind it in the accept queue).
        if (listener->open >= options_.max_connections && !close_one_idle(*listener)) {
            if (listener->refusing < options_.max_connections) {
                ++listener->refusing;
                net::co_spawn(executor, serve(std::move(socket), listener, Admission::refuse),
                              [listener](const std::exception_ptr& failure) {
                                  --listener->refusing;
                                  if (failure) {
                                      log_connection_failure(failure);
                                  }
                              });
                continue;
            }
        }
        // An idle connection was closed to make room (or the refusals are at their bound):
        // wait until a connection closes, closing the next one to turn idle.
        while (listener->open >= options_.max_connections && !stopping_) {
            listener->waiting = true;
            listener->wake.expires_at(std::chrono::steady_clock::time_point::max());
            co_await listener->wake.async_wait(net::redirect_error(net::use_awaitable, ec));
            listener->waiting = false;
            if (listener->open >= options_.max_connections) {
                close_one_idle(*listener);
            }
        }
        if (stopping_) {
            break;
        }
        ++listener->open;
        net::co_spawn(executor, serve(std::move(socket), listener, Admission::serve),
                      [listener](const std::exception_ptr& failure) {
                          --listener->open;
                          listener->wake.cancel();
                          if (failure) {
                              log_connection_failure(failure);
                          }
                      });
    }
}

namespace {

/// After an error response on a connection whose request was not read in full, stop sending
/// and read what the client still sends, so that closing does not reset the connection before
/// the client has read the response.
Task<void> lingering_close(beast::tcp_stream& stream, beast::flat_buffer& buffer) {
    boost::system::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    std::size_t discarded = 0;
    while (!ec && discarded < 4 * 1024 * 1024) {
        buffer.clear();
        stream.expires_after(std::chrono::seconds(1));
        discarded += co_await stream.async_read_some(buffer.prepare(64 * 1024),
                                                     net::redirect_error(net::use_awaitable, ec));
    }
}

constexpr std::size_t kMaxHeldBytes = 64 * 1024;
/// Request line and headers; larger ones get 431 (Beast's default, stated here to be named).
constexpr std::uint32_t kHeaderLimit = 8 * 1024;

/// The requests of one connection that count in its listener's `in_flight`: those read whose
/// answers are not written yet. They stop counting once their answers are written, or at the
/// latest when the connection's coroutine ends, whichever way it ends (a failed write, an
/// exception): a request counted forever would hold every later drain for its whole timeout.
class InFlight {
  public:
    explicit InFlight(std::atomic<std::size_t>& total) : total_(total) {}
    ~InFlight() { done(); }
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;

    void add() {
        ++count_;
        ++total_;
    }
    /// Their answers are written, or never will be.
    void done() { total_ -= std::exchange(count_, 0); }
    std::size_t count() const { return count_; }

  private:
    std::atomic<std::size_t>& total_;
    std::size_t count_ = 0;
};

using Clock = std::chrono::steady_clock;

/// Counts a request in its listener's `handling` for as long as its handler runs.
class Handling {
  public:
    explicit Handling(std::size_t& count) : count_(count) { ++count_; }
    ~Handling() { --count_; }
    Handling(const Handling&) = delete;
    Handling& operator=(const Handling&) = delete;

  private:
    std::size_t& count_;
};

bool is_parse_error(const boost::system::error_code& ec) {
    return ec.category() == http::make_error_code(http::error::bad_target).category() &&
           ec != http::error::end_of_stream && ec != http::error::partial_message;
}

}  // namespace

/// Answers not yet written, and the requests they answer. Answers to pipelined requests that
/// arrived together go out together, in one write, once no further whole request waits in the
/// read buffer.
struct HttpServer::Held {
    explicit Held(std::atomic<std::size_t>& in_flight) : requests(in_flight) {}
    std::string bytes;
    InFlight requests;  ///< counted from the moment they are read
};

Task<void> HttpServer::flush(beast::tcp_stream& stream, Connection& connection, Held& held,
                             boost::system::error_code& ec) {
    if (held.requests.count() == 0) {
        co_return;
    }
    stream.expires_after(std::chrono::seconds(30));
    co_await net::async_write(stream, net::buffer(held.bytes),
                              net::redirect_error(net::use_awaitable, ec));
    held.bytes.clear();
    held.requests.done();
    connection.busy = false;
    connection.answered = true;
    if (connection.listener->waiting) {
        connection.listener->wake.cancel();  // a new client waits for an idle connection
    }
}

Task<void> HttpServer::read_request(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                    http::request_parser<http::string_body>& parser,
                                    Connection& connection, Held& held,
                                    Clock::time_point& read_deadline,
                                    boost::system::error_code& ec) {
    // As Beast's read, but held answers are written before waiting for the socket.
    for (;;) {
        if (buffer.size() > 0) {
            const auto used = parser.put(buffer.data(), ec);
            buffer.consume(used);
            if ((!ec || ec == http::error::need_more) && parser.is_header_done() &&
                parser.get().count(http::field::content_length) > 1) {
                // Beast takes repeated equal values as one; a request framed twice is refused,
                // as a proxy in front may have read it by the other header.
                ec = http::error::bad_content_length;
                co_return;
            }
            if (ec == http::error::need_more) {
                ec = {};
            } else if (ec || parser.is_done()) {
                co_return;
            } else if (used > 0 && buffer.size() > 0) {
                continue;  // the header is parsed; the body follows in the same bytes
            }
        }
        co_await flush(stream, connection, held, ec);
        if (ec) {
            co_return;
        }
        // Between requests a kept-alive connection may idle; a request once begun must arrive
        // whole in time. Beast's parser takes no bytes of a header until it is complete, so
        // bytes in the buffer mean a request has begun.
        if (buffer.size() > 0 || parser.got_some()) {
            connection.partial = true;
            if (read_deadline == Clock::time_point::max()) {
                read_deadline = Clock::now() + options_.request_read_timeout;
            }
        }
        if (read_deadline == Clock::time_point::max()) {
            stream.expires_after(options_.idle_timeout);
        } else {
            stream.expires_at(read_deadline);
        }
        const auto read =
            co_await stream.async_read_some(buffer.prepare(beast::read_size(buffer, 64 * 1024)),
                                            net::redirect_error(net::use_awaitable, ec));
        buffer.commit(read);
        if (ec == net::error::eof) {
            ec = {};
            if (parser.got_some()) {
                parser.put_eof(ec);
            }
            if (!ec) {
                ec = http::error::end_of_stream;
            }
        }
        if (ec) {
            co_return;
        }
    }
}

Task<void> HttpServer::serve(tcp::socket socket, std::shared_ptr<Listener> listener,
                             Admission admission) {
    boost::system::error_code ec;
    const auto peer = socket.remote_endpoint(ec);
    const std::string remote =
        ec ? "unknown" : peer.address().to_string() + ":" + std::to_string(peer.port());
    socket.set_option(tcp::no_delay(true), ec);

    beast::tcp_stream stream(std::move(socket));
    Connection connection(stream, *listener);
    const bool refuse = admission == Admission::refuse;
    // Never closed as idle, nor made to wait for room: it answers one request and closes.
    connection.busy = refuse;
    beast::flat_buffer buffer;
    Held held(listener->in_flight);
    // The first request counts from the moment the connection was accepted.
    auto read_deadline = Clock::now() + options_.request_read_timeout;
    while (!stopping_) {
        http::request_parser<http::string_body> parser;
        parser.body_limit(options_.body_limit);
        parser.header_limit(kHeaderLimit);
        co_await read_request(stream, buffer, parser, connection, held, read_deadline, ec);
        if (ec) {
            std::optional<Error> error;
            if (ec == http::error::body_limit) {
                error = Error{
                    ErrorCode::payload_too_large,
                    "the body is larger than " + std::to_string(options_.body_limit) + " bytes"};
            } else if (ec == http::error::header_limit) {
                error = Error{ErrorCode::headers_too_large,
                              "the request line and headers are larger than " +
                                  std::to_string(kHeaderLimit) + " bytes"};
            } else if (is_parse_error(ec)) {
                error = Error{ErrorCode::invalid_field, "malformed HTTP request: " + ec.message()};
            }
            if (error) {
                auto response = error_response(*error);
                response.keep_alive(false);
                record("unmatched", response.result_int(), {});
                // The answers to the requests before the bad one go first.
                ec = {};
                co_await flush(stream, connection, held, ec);
                if (!ec) {
                    stream.expires_after(std::chrono::seconds(5));
                    co_await http::async_write(stream, response,
                                               net::redirect_error(net::use_awaitable, ec));
                    co_await lingering_close(stream, buffer);
                }
            }
            break;
        }

        read_deadline = Clock::time_point::max();
        connection.busy = true;
        connection.partial = false;
        held.requests.add();
        Request request{parser.release(), {}, {}};
        const auto method = request.message.method();
        const bool keep_alive = request.message.keep_alive() && !stopping_ && !refuse;
        const std::string target(options_.access_log ? request.message.target() : "");
        const bool shed = refuse || must_shed(*listener, request.message.target());
        const auto started = std::chrono::steady_clock::now();
        Router::Dispatched dispatched;
        if (shed) {
            // Refused before any work and cheaply: counted, without an access-log line.
            shed_.add();
            dispatched.response = error_response(
                {ErrorCode::overloaded,
                 refuse
                     ? options_.service_name + " has " + std::to_string(options_.max_connections) +
                           " busy connections per thread (max-connections); retry shortly"
                     : options_.service_name + " is handling " +
                           std::to_string(options_.max_in_flight) +
                           " requests per thread (max-requests-in-flight); retry shortly"});
        } else {
            const Handling handling(listener->handling);
            dispatched = co_await router_.dispatch(std::move(request));
        }
        auto& [route, response] = dispatched;
        const auto elapsed = std::chrono::steady_clock::now() - started;

        if (method == http::verb::head) {
            const auto length = response.body().size();
            response.body().clear();
            response.content_length(length);
        }
        response.keep_alive(keep_alive && !stopping_);
        response.set(http::field::server, "calcmesh");
        if (!shed) {
            record(route, response.result_int(), elapsed);
        }
        if (options_.access_log && !shed) {
            spdlog::info(
                "event=request method={} target=\"{}\" status={} duration_ms={:.3f} remote={}",
                http::to_string(method), target, response.result_int(),
                std::chrono::duration<double, std::milli>(elapsed).count(), remote);
        }
        append_wire(held.bytes, response);
        if (!response.keep_alive() || held.bytes.size() >= kMaxHeldBytes) {
            co_await flush(stream, connection, held, ec);
            if (ec || !response.keep_alive()) {
                break;
            }
        }
    }
    co_await flush(stream, connection, held, ec);
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

bool HttpServer::must_shed(const Listener& listener, std::string_view target) const {
    if (listener.handling < options_.max_in_flight) {
        return false;
    }
    const auto path = target.substr(0, target.find('?'));
    return std::find(options_.always_admitted.begin(), options_.always_admitted.end(), path) ==
           options_.always_admitted.end();
}

void HttpServer::record(const std::string& route, unsigned status,
                        std::chrono::nanoseconds elapsed) {
    auto it = route_metrics_.find(route);
    if (it == route_metrics_.end()) {
        it = route_metrics_.find("unmatched");
    }
    auto& metrics = *it->second;
    metrics.latency->observe(elapsed);
    const auto index = std::min<std::size_t>(status, metrics.by_status.size() - 1);
    Counter* counter = metrics.by_status[index].load(std::memory_order_acquire);
    if (!counter) {
        // First response with this status on this route: register it (takes a lock once).
        counter = &metrics_.counter("calcmesh_http_requests_total",
                                    "HTTP requests handled, by route and status.",
                                    {{"route", it->first}, {"status", std::to_string(status)}});
        metrics.by_status[index].store(counter, std::memory_order_release);
    }
    counter->add();
}

}  // namespace calcmesh
