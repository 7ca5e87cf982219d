#pragma once

#include <chrono>
#include <deque>
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

/// An asynchronous HTTP/1.1 client that keeps connections alive per upstream host and, with a
/// pipeline depth above 1, sends concurrent requests to one host together on one connection.
///
/// Requests that arrive while a connection's previous batch is on the wire go out together
/// as its next batch, in one write, and are answered in order (HTTP/1.1 pipelining): under
/// load, one system call and one wake-up of the upstream carry many requests. A connection
/// carries at most `pipeline_depth` requests at once; more open another connection, so depth
/// 1 is a plain pool with one request per connection at a time. With `max_connections_per_host`
/// (0: no bound), once that many are open and all are full, a request waits in line on the
/// least loaded one, as a browser's or wrk's fixed pool does, instead of opening more: an
/// upstream past its own connection cap would close idle ones or refuse new ones.
///
/// Not thread-safe: use one client per single-threaded io_context, from coroutines on it.
/// Failures are domain errors naming the upstream: `upstream_unavailable` when it cannot be
/// reached or drops the connection, `upstream_timeout` when the deadline passes.
class HttpClient {
  public:
    explicit HttpClient(net::any_io_executor executor, std::size_t pipeline_depth = 1,
                        std::size_t max_idle_per_host = 64,
                        std::size_t max_connections_per_host = 0);
    ~HttpClient();
    HttpClient(const HttpClient&) = delete;
    HttpClient& operator=(const HttpClient&) = delete;

    /// Sends one request to `url.base_path + target` and waits for the whole response until
    /// `timeout` runs out. Requests the peer did not handle because it closed the connection
    /// after an earlier answer (`Connection: close`) go again on a fresh connection; those
    /// left unanswered when a kept-alive connection broke (the peer closed it while idle) go
    /// once more. `upstream` names the peer in error messages.
    Task<Result<ClientResponse>> send(http::verb method, Url url, std::string target,
                                      std::string body, std::string content_type,
                                      std::chrono::milliseconds timeout, std::string upstream);

    /// Open connections, busy or idle, to every host.
    std::size_t connections() const;

  private:
    struct Exchange;
    struct Connection;
    using ExchangePtr = std::shared_ptr<Exchange>;
    using ConnectionPtr = std::shared_ptr<Connection>;

    /// Puts a request on a connection to its host with room for it, or on a new one, or, at
    /// `max_connections_per_host`, in line on the least loaded one.
    ConnectionPtr place(ExchangePtr exchange);
    /// Starts a background driver on a connection that has none.
    void kick(const ConnectionPtr& connection);
    /// Sends the connection's batches and reads their answers until none is queued, or, with
    /// `until`, until that request has its answer (a background driver takes the rest). With
    /// a pipeline depth above 1 it first lets the loop's turn end, so that the requests made
    /// in that turn join the first batch.
    Task<void> run_batches(ConnectionPtr connection, const Exchange* until);
    /// Ends a broken connection: fails or re-sends the requests it left without an answer.
    void abandon(Connection& connection, const std::vector<ExchangePtr>& unanswered,
                 boost::system::error_code ec, bool may_resend);
    void remove(const Connection& connection);

    net::any_io_executor executor_;
    std::size_t pipeline_depth_;
    std::size_t max_idle_per_host_;
    std::size_t max_connections_per_host_;
    std::map<std::string, std::vector<ConnectionPtr>> connections_;
};

}  // namespace calcmesh
