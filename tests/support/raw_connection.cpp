#include "raw_connection.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <system_error>

namespace calcmesh::testing {

namespace {

constexpr std::string_view kHeaderEnd = "\r\n\r\n";

bool same_name(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

std::optional<std::string> find_header(std::string_view bytes, std::string_view name) {
    const auto end = bytes.find(kHeaderEnd);
    if (end == std::string_view::npos) {
        return std::nullopt;
    }
    auto headers = bytes.substr(0, end);
    for (auto line_start = headers.find("\r\n"); line_start != std::string_view::npos;) {
        line_start += 2;
        const auto line_end = headers.find("\r\n", line_start);
        const auto line = headers.substr(line_start, line_end - line_start);
        const auto colon = line.find(':');
        if (colon != std::string_view::npos && same_name(line.substr(0, colon), name)) {
            auto value = line.substr(colon + 1);
            while (!value.empty() && value.front() == ' ') {
                value.remove_prefix(1);
            }
            return std::string(value);
        }
        line_start = line_end;
    }
    return std::nullopt;
}

/// The size of the whole answer the bytes begin with, once its header is in.
std::optional<std::size_t> answer_size(std::string_view bytes) {
    const auto end = bytes.find(kHeaderEnd);
    if (end == std::string_view::npos) {
        return std::nullopt;
    }
    const auto length = find_header(bytes, "Content-Length");
    return end + kHeaderEnd.size() + (length ? std::stoul(*length) : 0);
}

}  // namespace

RawConnection::RawConnection(unsigned short port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
        throw std::system_error(errno, std::generic_category(), "socket");
    }
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        const int error = errno;
        ::close(fd_);
        throw std::system_error(error, std::generic_category(), "connect");
    }
}

RawConnection::~RawConnection() {
    ::close(fd_);
}

bool RawConnection::send(std::string_view bytes) {
    while (!bytes.empty()) {
        const auto sent = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (sent <= 0) {
            return false;
        }
        bytes.remove_prefix(static_cast<std::size_t>(sent));
    }
    return true;
}

RawConnection::Reply RawConnection::receive(std::chrono::milliseconds timeout) {
    Reply reply;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    char buffer[16 * 1024];
    for (;;) {
        if (const auto size = answer_size(reply.bytes); size && reply.bytes.size() >= *size) {
            return reply;
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd readable{fd_, POLLIN, 0};
        if (left.count() <= 0 || ::poll(&readable, 1, static_cast<int>(left.count())) <= 0) {
            return reply;
        }
        const auto got = ::recv(fd_, buffer, sizeof buffer, 0);
        if (got <= 0) {
            reply.closed = true;
            return reply;
        }
        reply.bytes.append(buffer, static_cast<std::size_t>(got));
    }
}

bool RawConnection::closed_by_service() {
    char byte;
    const auto got = ::recv(fd_, &byte, 1, MSG_DONTWAIT | MSG_PEEK);
    return got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

std::optional<unsigned> RawConnection::Reply::status() const {
    constexpr std::string_view kVersion = "HTTP/1.1 ";
    if (bytes.size() < kVersion.size() + 3 || bytes.compare(0, kVersion.size(), kVersion) != 0 ||
        !std::all_of(bytes.begin() + kVersion.size(), bytes.begin() + kVersion.size() + 3,
                     [](unsigned char c) { return std::isdigit(c); })) {
        return std::nullopt;
    }
    return static_cast<unsigned>(std::stoul(bytes.substr(kVersion.size(), 3)));
}

std::optional<std::string> RawConnection::Reply::header(std::string_view name) const {
    return find_header(bytes, name);
}

std::string RawConnection::Reply::body() const {
    const auto end = bytes.find(kHeaderEnd);
    const auto size = answer_size(bytes);
    if (!size || bytes.size() < *size) {
        return {};
    }
    return bytes.substr(end + kHeaderEnd.size(), *size - end - kHeaderEnd.size());
}

}  // namespace calcmesh::testing
