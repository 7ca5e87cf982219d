// Test support for tests of HttpServer over real sockets: a server on its own thread, and a
// blocking TCP connection that speaks raw bytes to it (malformed requests, connections held open,
// closes observed).
#pragma once

#include <poll.h>

#include <array>
#include <boost/asio.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "calcmesh/http_server.hpp"
#include "calcmesh/metrics.hpp"

namespace calcmesh::testing {

/// An HttpServer with `router` on a free loopback port, on a thread and event loop of its own,
/// without the access log.
class ThreadedServer {
  public:
    explicit ThreadedServer(Router router, HttpServerOptions options = {}) {
        options.access_log = false;
        server_ = std::make_unique<HttpServer>(options, std::move(router), metrics_);
        server_->start({&context_});
        thread_ = std::thread([this] { context_.run(); });
    }
    ThreadedServer(const ThreadedServer&) = delete;
    ThreadedServer& operator=(const ThreadedServer&) = delete;
    ~ThreadedServer() {
        work_.reset();
        context_.stop();
        thread_.join();
    }
    HttpServer& http() { return *server_; }
    const HttpServer& http() const { return *server_; }

  private:
    MetricsRegistry metrics_;
    boost::asio::io_context context_{1};
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
        context_.get_executor()};
    std::unique_ptr<HttpServer> server_;
    std::thread thread_;
};

class LoopbackConnection {
  public:
    explicit LoopbackConnection(unsigned short port) {
        socket_.connect({boost::asio::ip::make_address("127.0.0.1"), port});
    }

    void send(std::string_view bytes) { boost::asio::write(socket_, boost::asio::buffer(bytes)); }

    /// Whether bytes, or the end of the connection, arrive within `wait`.
    bool readable_within(std::chrono::milliseconds wait) {
        pollfd readable{socket_.native_handle(), POLLIN, 0};
        return ::poll(&readable, 1, static_cast<int>(wait.count())) == 1;
    }

    /// What the server sent, if it closed the connection within `wait`.
    std::optional<std::string> read_until_closed(std::chrono::milliseconds wait) {
        const auto deadline = std::chrono::steady_clock::now() + wait;
        std::string text;
        while (readable_within(std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now()))) {
            std::array<char, 4096> chunk{};
            boost::system::error_code ec;
            const auto read = socket_.read_some(boost::asio::buffer(chunk), ec);
            if (ec) {
                return text;
            }
            text.append(chunk.data(), read);
        }
        return std::nullopt;
    }

  private:
    boost::asio::io_context context_;
    boost::asio::ip::tcp::socket socket_{context_};
};

}  // namespace calcmesh::testing
