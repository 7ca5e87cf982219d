// Test support: a blocking TCP connection to a server on 127.0.0.1, for tests that speak raw
// bytes to an HttpServer (malformed requests, connections held open, closes observed).
#pragma once

#include <poll.h>

#include <array>
#include <boost/asio.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace calcmesh::testing {

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
