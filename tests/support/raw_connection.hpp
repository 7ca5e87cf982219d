#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace calcmesh::testing {

/// A TCP connection to 127.0.0.1 that sends bytes exactly as given, for clients that break the
/// rules of HTTP: half-sent headers, mutated requests, contradictory framing.
class RawConnection {
  public:
    /// Connects; throws std::system_error if it cannot.
    explicit RawConnection(unsigned short port);
    ~RawConnection();
    RawConnection(const RawConnection&) = delete;
    RawConnection& operator=(const RawConnection&) = delete;

    /// Sends every byte; false if the service has closed the connection meanwhile.
    bool send(std::string_view bytes);

    /// What came back: the bytes, and whether the service closed the connection.
    struct Reply {
        std::string bytes;
        bool closed = false;
        /// The status of the answer the bytes begin with, if they begin with one.
        std::optional<unsigned> status() const;
        /// A header of that answer (the first one of that name, any case).
        std::optional<std::string> header(std::string_view name) const;
        /// Its body, once whole.
        std::string body() const;
    };
    /// Reads until one whole answer has come (status line, headers and Content-Length bytes
    /// of body), the service closes the connection, or `timeout` passes.
    Reply receive(std::chrono::milliseconds timeout);
    /// Whether the service has closed the connection, without waiting.
    bool closed_by_service();

  private:
    int fd_ = -1;
};

}  // namespace calcmesh::testing
