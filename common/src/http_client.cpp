#include "calcmesh/http_client.hpp"

namespace calcmesh {

namespace {

std::string milliseconds_text(std::chrono::milliseconds timeout) {
    return std::to_string(timeout.count()) + " ms";
}

/// True for errors that mean a pooled connection had been closed by the peer before use.
bool is_stale_connection(const boost::system::error_code& ec) {
    return ec == http::error::end_of_stream || ec == net::error::eof ||
           ec == net::error::connection_reset || ec == net::error::broken_pipe ||
           ec == http::error::partial_message;
}

}  // namespace

HttpClient::HttpClient(net::any_io_executor executor, std::size_t max_idle_per_host)
    : executor_(std::move(executor)), max_idle_per_host_(max_idle_per_host) {}

std::size_t HttpClient::idle_connections() const {
    std::size_t count = 0;
    for (const auto& [host, streams] : idle_) {
        count += streams.size();
    }
    return count;
}

Task<Result<HttpClient::Stream>> HttpClient::connect(const Url& url,
                                                     std::chrono::steady_clock::time_point deadline,
                                                     const std::string& upstream) {
    tcp::resolver resolver(executor_);
    boost::system::error_code ec;
    const auto endpoints = co_await resolver.async_resolve(
        url.host, url.port, net::redirect_error(net::use_awaitable, ec));
    if (ec) {
        co_return fail(
            ErrorCode::upstream_unavailable,
            upstream + " is unavailable: cannot resolve " + url.host + ": " + ec.message());
    }
    auto stream = std::make_unique<beast::tcp_stream>(executor_);
    stream->expires_at(deadline);
    co_await stream->async_connect(endpoints, net::redirect_error(net::use_awaitable, ec));
    if (ec == beast::error::timeout) {
        co_return fail(ErrorCode::upstream_timeout, upstream + " at " + url.host_port() +
                                                        " did not accept a connection in time");
    }
    if (ec) {
        co_return fail(ErrorCode::upstream_unavailable, upstream +
                                                            " is unavailable: cannot connect to " +
                                                            url.host_port() + ": " + ec.message());
    }
    stream->socket().set_option(tcp::no_delay(true), ec);
    co_return std::move(stream);
}

Task<Result<ClientResponse>> HttpClient::send(http::verb method, Url url, std::string target,
                                              std::string body, std::string content_type,
                                              std::chrono::milliseconds timeout,
                                              std::string upstream) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    http::request<http::string_body> request{method, url.base_path + target, 11};
    request.set(http::field::host, url.host_port());
    request.set(http::field::user_agent, "calcmesh");
    if (!content_type.empty()) {
        request.set(http::field::content_type, content_type);
    }
    request.body() = std::move(body);
    request.keep_alive(true);
    request.prepare_payload();

    const auto key = url.host_port();
    for (int attempt = 0;; ++attempt) {
        auto& pool = idle_[key];
        const bool reused = !pool.empty();
        Stream stream;
        if (reused) {
            stream = std::move(pool.back());
            pool.pop_back();
        } else {
            auto connected = co_await connect(url, deadline, upstream);
            if (!connected) {
                co_return connected.error();
            }
            stream = std::move(connected).value();
        }

        stream->expires_at(deadline);
        boost::system::error_code ec;
        co_await http::async_write(*stream, request, net::redirect_error(net::use_awaitable, ec));
        beast::flat_buffer buffer;
        http::response_parser<http::string_body> parser;
        parser.body_limit(16 * 1024 * 1024);
        if (!ec) {
            co_await http::async_read(*stream, buffer, parser,
                                      net::redirect_error(net::use_awaitable, ec));
        }
        if (ec == beast::error::timeout) {
            co_return fail(ErrorCode::upstream_timeout, upstream + " at " + url.host_port() +
                                                            " did not answer within " +
                                                            milliseconds_text(timeout));
        }
        if (ec && reused && attempt == 0 && is_stale_connection(ec)) {
            continue;
        }
        if (ec) {
            co_return fail(
                ErrorCode::upstream_unavailable,
                upstream + " at " + url.host_port() + " closed the connection: " + ec.message());
        }
        auto response = parser.release();
        if (response.keep_alive() && pool.size() < max_idle_per_host_) {
            stream->expires_never();
            pool.push_back(std::move(stream));
        }
        co_return ClientResponse{response.result_int(), std::move(response.body()),
                                 std::string(response[http::field::content_type])};
    }
}

}  // namespace calcmesh
