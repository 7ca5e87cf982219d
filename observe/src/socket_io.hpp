#pragma once

#include <optional>
#include <string>

namespace calcmesh::observe {

/// A connected stream socket that carries lines of text (the collector's JSON lines). Owns the
/// descriptor.
class LineSocket {
  public:
    explicit LineSocket(int fd) : fd_(fd) {}
    ~LineSocket();
    LineSocket(const LineSocket&) = delete;
    LineSocket& operator=(const LineSocket&) = delete;

    /// Connects to a unix socket; throws std::runtime_error naming it if it cannot.
    static LineSocket connect_unix(const std::string& path);

    /// The next line without its newline; nullopt once the peer has closed.
    std::optional<std::string> read_line();
    /// Writes `line` and a newline; false if the peer is gone.
    bool write_line(const std::string& line);
    /// Whether the peer still has the connection open (checked without blocking).
    bool open() const;

  private:
    int fd_;
    std::string buffer_;
};

}  // namespace calcmesh::observe
