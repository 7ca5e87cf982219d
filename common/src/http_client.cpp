#include "calcmesh/http_client.hpp"

#include <algorithm>

namespace calcmesh {

namespace {

constexpr std::size_t kMaxResponseBody = 16 * 1024 * 1024;

std::string milliseconds_text(std::chrono::milliseconds timeout) {
    return std::to_string(timeout.count()) + " ms";
}

}  // namespace

/// One request and, once it came, its answer.
struct HttpClient::Exchange {
    Exchange(const net::any_io_executor& executor, Url url, std::string upstream,
             std::chrono::milliseconds timeout)
        : url(std::move(url)),
          upstream(std::move(upstream)),
          timeout(timeout),
          deadline(std::chrono::steady_clock::now() + timeout),
          wake(executor) {}

    /// Settles the request once, with an answer or an error; wakes its sender if it waits.
    template <class Answer>
    void finish(Answer answer) {
        if (!result) {
            result.emplace(boost::outcome_v2::in_place_type<Answer>, std::move(answer));
            wake.cancel();
        }
    }
    Error timeout_error() const {
        return {ErrorCode::upstream_timeout, upstream + " at " + url.host_port() +
                                                 " did not answer within " +
                                                 milliseconds_text(timeout)};
    }

    Url url;
    std::string upstream;
    std::chrono::milliseconds timeout;
    std::chrono::steady_clock::time_point deadline;
    std::string text;
    bool resent = false;
    std::optional<Result<ClientResponse>> result;
    net::steady_timer wake;
};

/// A kept-alive connection and the requests it carries, in the order they are answered.
struct HttpClient::Connection {
    std::size_t load() const { return queued.size() + on_wire; }

    std::string key;  ///< host:port
    std::unique_ptr<beast::tcp_stream> stream;
    beast::flat_buffer buffer;
    std::deque<ExchangePtr> queued;  ///< waiting for the next batch
    std::size_t on_wire = 0;         ///< sent, not all answered yet
    bool driving = false;            ///< a coroutine sends and reads for it
    bool answered_before = false;    ///< a batch was answered: the peer may have closed it since
};

HttpClient::HttpClient(net::any_io_executor executor, std::size_t pipeline_depth,
                       std::size_t max_idle_per_host, std::size_t max_connections_per_host)
    : executor_(std::move(executor)),
      pipeline_depth_(std::max<std::size_t>(pipeline_depth, 1)),
      max_idle_per_host_(max_idle_per_host),
      max_connections_per_host_(max_connections_per_host) {}

HttpClient::~HttpClient() = default;

std::size_t HttpClient::connections() const {
    std::size_t count = 0;
    for (const auto& [host, pool] : connections_) {
        count += pool.size();
    }
    return count;
}

Task<Result<ClientResponse>> HttpClient::send(http::verb method, Url url, std::string target,
                                              std::string body, std::string content_type,
                                              std::chrono::milliseconds timeout,
                                              std::string upstream) {
    auto exchange =
        std::make_shared<Exchange>(executor_, std::move(url), std::move(upstream), timeout);
    http::request<http::string_body> request{method, exchange->url.base_path + target, 11};
    request.set(http::field::host, exchange->url.host_port());
    request.set(http::field::user_agent, "calcmesh");
    if (!content_type.empty()) {
        request.set(http::field::content_type, content_type);
    }
    request.body() = std::move(body);
    request.keep_alive(true);
    request.prepare_payload();
    append_wire(exchange->text, request);
    auto connection = place(exchange);
    if (!connection->driving) {
        // The first sender on an idle connection carries the batch itself: no hand-over.
        connection->driving = true;
        co_await run_batches(connection, exchange.get());
    }
    if (!exchange->result) {
        exchange->wake.expires_at(exchange->deadline);
        boost::system::error_code ignored;
        co_await exchange->wake.async_wait(net::redirect_error(net::use_awaitable, ignored));
    }
    if (!exchange->result) {
        co_return exchange->timeout_error();
    }
    co_return std::move(*exchange->result);
}

HttpClient::ConnectionPtr HttpClient::place(ExchangePtr exchange) {
    auto key = exchange->url.host_port();
    auto& pool = connections_[key];
    const auto room = std::find_if(pool.begin(), pool.end(), [this](const ConnectionPtr& c) {
        return c->load() < pipeline_depth_;
    });
    ConnectionPtr connection;
    if (room != pool.end()) {
        connection = *room;
    } else if (max_connections_per_host_ > 0 && pool.size() >= max_connections_per_host_) {
        connection = *std::min_element(
            pool.begin(), pool.end(),
            [](const ConnectionPtr& a, const ConnectionPtr& b) { return a->load() < b->load(); });
    } else {
        connection = std::make_shared<Connection>();
        connection->key = std::move(key);
        pool.push_back(connection);
    }
    connection->queued.push_back(std::move(exchange));
    return connection;
}

void HttpClient::kick(const ConnectionPtr& connection) {
    if (!connection->driving) {
        connection->driving = true;
        net::co_spawn(executor_, run_batches(connection, nullptr), net::detached);
    }
}

Task<void> HttpClient::run_batches(ConnectionPtr connection, const Exchange* until) {
    if (pipeline_depth_ > 1) {
        // Requests made in this turn of the loop join the batch.
        co_await net::post(executor_, net::use_awaitable);
    }
    boost::system::error_code ec;
    while (!connection->queued.empty()) {
        std::vector<ExchangePtr> batch;
        std::string wire;
        auto earliest = std::chrono::steady_clock::time_point::max();
        const auto now = std::chrono::steady_clock::now();
        while (!connection->queued.empty() && batch.size() < pipeline_depth_) {
            auto exchange = std::move(connection->queued.front());
            connection->queued.pop_front();
            if (exchange->deadline <= now) {
                exchange->finish(exchange->timeout_error());  // its sender gave up already
                continue;
            }
            wire += exchange->text;
            earliest = std::min(earliest, exchange->deadline);
            batch.push_back(std::move(exchange));
        }
        if (batch.empty()) {
            continue;
        }
        connection->on_wire = batch.size();

        if (!connection->stream) {
            const auto& first = *batch.front();
            tcp::resolver resolver(executor_);
            const auto endpoints = co_await resolver.async_resolve(
                first.url.host, first.url.port, net::redirect_error(net::use_awaitable, ec));
            std::optional<Error> failure;
            if (ec) {
                failure = Error{ErrorCode::upstream_unavailable,
                                first.upstream + " is unavailable: cannot resolve " +
                                    first.url.host + ": " + ec.message()};
            } else {
                connection->stream = std::make_unique<beast::tcp_stream>(executor_);
                connection->stream->expires_at(earliest);
                co_await connection->stream->async_connect(
                    endpoints, net::redirect_error(net::use_awaitable, ec));
                if (ec == beast::error::timeout) {
                    failure = Error{ErrorCode::upstream_timeout,
                                    first.upstream + " at " + first.url.host_port() +
                                        " did not accept a connection in time"};
                } else if (ec) {
                    failure = Error{ErrorCode::upstream_unavailable,
                                    first.upstream + " is unavailable: cannot connect to " +
                                        first.url.host_port() + ": " + ec.message()};
                }
            }
            if (failure) {
                // Nothing was sent: whatever waits for this host gets the same answer.
                remove(*connection);
                for (auto& exchange : connection->queued) {
                    batch.push_back(std::move(exchange));
                }
                connection->queued.clear();
                for (auto& exchange : batch) {
                    exchange->finish(*failure);
                }
                co_return;
            }
            connection->stream->socket().set_option(tcp::no_delay(true), ec);
        }

        auto& stream = *connection->stream;
        stream.expires_at(earliest);
        co_await net::async_write(stream, net::buffer(wire),
                                  net::redirect_error(net::use_awaitable, ec));
        std::size_t answered = 0;
        bool closing = false;
        while (!ec && !closing && answered < batch.size()) {
            stream.expires_at(batch[answered]->deadline);
            http::response_parser<http::string_body> parser;
            parser.body_limit(kMaxResponseBody);
            co_await http::async_read(stream, connection->buffer, parser,
                                      net::redirect_error(net::use_awaitable, ec));
            if (ec) {
                break;
            }
            auto response = parser.release();
            closing = !response.keep_alive();
            batch[answered++]->finish(
                ClientResponse{response.result_int(), std::move(response.body()),
                               std::string(response[http::field::content_type])});
        }
        connection->on_wire = 0;
        if (ec || closing) {
            std::vector<ExchangePtr> unanswered(
                batch.begin() + static_cast<std::ptrdiff_t>(answered), batch.end());
            if (!ec) {
                // The peer answered and said it closes: it does not handle the requests after
                // that answer, so they go again as if never sent.
                connection->queued.insert(connection->queued.begin(), unanswered.begin(),
                                          unanswered.end());
                unanswered.clear();
            }
            // A peer may also close a connection that sat idle: the requests it did not
            // answer then go once more on a fresh connection.
            abandon(*connection, unanswered, ec, connection->answered_before || answered > 0);
            co_return;
        }
        connection->answered_before = true;
        if (until && until->result) {
            if (connection->queued.empty()) {
                break;
            }
            // The sender has its answer; a background driver takes over the rest.
            net::co_spawn(executor_, run_batches(connection, nullptr), net::detached);
            co_return;
        }
    }
    connection->driving = false;
    if (connection->stream) {
        connection->stream->expires_never();
    }
    const auto& pool = connections_[connection->key];
    if (pool.size() > max_idle_per_host_ &&
        static_cast<std::size_t>(std::count_if(pool.begin(), pool.end(), [](const auto& c) {
            return !c->driving;
        })) > max_idle_per_host_) {
        remove(*connection);
    }
}

void HttpClient::abandon(Connection& connection, const std::vector<ExchangePtr>& unanswered,
                         boost::system::error_code ec, bool may_resend) {
    remove(connection);
    const auto now = std::chrono::steady_clock::now();
    std::vector<ConnectionPtr> resumed;
    for (auto& exchange : unanswered) {
        if (exchange->deadline <= now) {
            exchange->finish(exchange->timeout_error());
        } else if ((may_resend || ec == beast::error::timeout) && !exchange->resent) {
            // Sent behind one that timed out, or to a peer that closed the connection.
            exchange->resent = true;
            resumed.push_back(place(exchange));
        } else {
            exchange->finish(Error{ErrorCode::upstream_unavailable,
                                   exchange->upstream + " at " + exchange->url.host_port() +
                                       " closed the connection: " + ec.message()});
        }
    }
    // Requests still queued on it were never sent: they go on another connection.
    for (auto& exchange : connection.queued) {
        resumed.push_back(place(std::move(exchange)));
    }
    connection.queued.clear();
    for (const auto& next : resumed) {
        kick(next);
    }
}

void HttpClient::remove(const Connection& connection) {
    auto& pool = connections_[connection.key];
    std::erase_if(pool, [&](const ConnectionPtr& c) { return c.get() == &connection; });
}

}  // namespace calcmesh
