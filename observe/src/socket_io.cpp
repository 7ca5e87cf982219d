#include "socket_io.hpp"

#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace calcmesh::observe {

LineSocket::~LineSocket() {
    close(fd_);
}

LineSocket LineSocket::connect_unix(const std::string& path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof(address.sun_path)) {
        throw std::runtime_error("socket path too long: " + path);
    }
    std::strcpy(address.sun_path, path.c_str());
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
        const auto reason = std::strerror(errno);
        if (fd >= 0) {
            close(fd);
        }
        throw std::runtime_error(
            fmt::format("cannot reach the flow collector at {}: {}", path, reason));
    }
    return LineSocket(fd);
}

std::optional<std::string> LineSocket::read_line() {
    char chunk[65536];
    for (;;) {
        if (const auto end = buffer_.find('\n'); end != std::string::npos) {
            auto line = buffer_.substr(0, end);
            buffer_.erase(0, end + 1);
            return line;
        }
        const auto n = read(fd_, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return std::nullopt;
        }
        buffer_.append(chunk, static_cast<std::size_t>(n));
    }
}

bool LineSocket::write_line(const std::string& line) {
    const auto text = line + "\n";
    for (std::size_t sent = 0; sent < text.size();) {
        const auto n = send(fd_, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        sent += static_cast<std::size_t>(n);
    }
    return true;
}

bool LineSocket::open() const {
    pollfd state{fd_, POLLRDHUP, 0};
    return poll(&state, 1, 0) == 0 || (state.revents & (POLLRDHUP | POLLHUP | POLLERR)) == 0;
}

}  // namespace calcmesh::observe
