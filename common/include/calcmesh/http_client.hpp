#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "calcmesh/asio.hpp"
#include "calcmesh/error.hpp"
#include "calcmesh/http.hpp"

namespace calcmesh {

/// A response from an upstream service.
struct ClientResponse {
    unsigned status = 0;
    std::string body;
    std::string content_type;
};

/// An asynchronous HTTP/1.1 client that keeps connections alive per upstream host.
///
/// Not thread-safe: use one client per single-threaded io_context, from coroutines on it.
/// Failures are domain errors naming the upstream: `upstream_unavailable` when it cannot be
/// reached or drops the connection, `upstream_timeout` when the deadline passes.
class HttpClient {
  public:
    explicit HttpClient(net::any_io_executor executor, std::size_t max_idle_per_host = 64);

    /// Sends one request to `url.base_path + target` and reads the whole response before
    /// `timeout` runs out. A kept-alive connection that the peer closed meanwhile is retried
    /// once on a fresh connection. `upstream` names the peer in error messages.
    Task<Result<ClientResponse>> send(http::verb method, Url url, std::string target,
                                      std::string body, std::string content_type,
                                      std::chrono::milliseconds timeout, std::string upstream);

    /// Idle connections currently pooled, for tests and metrics.
    std::size_t idle_connections() const;

  private:
    // Streams are held by pointer: moving a Beast 1.74 tcp_stream allocates a new
    // implementation with its timers, which would cost two allocations per pooled request.
    using Stream = std::unique_ptr<beast::tcp_stream>;

    Task<Result<Stream>> connect(const Url& url, std::chrono::steady_clock::time_point deadline,
                                 const std::string& upstream);

    net::any_io_executor executor_;
    std::size_t max_idle_per_host_;
    std::map<std::string, std::vector<Stream>> idle_;
};

}  // namespace calcmesh
