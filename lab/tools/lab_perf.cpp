// lab_perf: TCP request/response measurements between lab pods, like netperf's TCP_RR and
// TCP_CRR. `server` echoes every byte it receives; `rr` times round trips on one connection;
// `crr` times connect, request, response and close. Results are one JSON object on stdout.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
    std::string host;
    int port = 7000;
    int transactions = 10000;
    int warmup = 1000;
    int size = 1;
    int timeout_ms = 5000;
};

[[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error(what + ": " + std::strerror(errno));
}

sockaddr_in address_of(const std::string& host, int port) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    if (inet_pton(AF_INET, host.c_str(), &address.sin_addr) != 1) {
        throw std::invalid_argument("--host must be an IPv4 address: " + host);
    }
    return address;
}

void set_option(int fd, int level, int name, const void* value, socklen_t size) {
    if (setsockopt(fd, level, name, value, size) != 0) {
        fail("setsockopt");
    }
}

int connect_to(const sockaddr_in& address, int timeout_ms) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fail("socket");
    }
    const int one = 1;
    set_option(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    // A broken datapath must end the measurement, not hang it.
    timeval timeout{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    set_option(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    set_option(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    if (connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
        close(fd);
        fail("connect");
    }
    return fd;
}

void send_all(int fd, const char* data, std::size_t size) {
    while (size > 0) {
        const auto n = send(fd, data, size, MSG_NOSIGNAL);
        if (n <= 0) {
            fail("send");
        }
        data += n;
        size -= static_cast<std::size_t>(n);
    }
}

void receive_all(int fd, char* data, std::size_t size) {
    while (size > 0) {
        const auto n = recv(fd, data, size, 0);
        if (n == 0) {
            throw std::runtime_error("connection closed by the server");
        }
        if (n < 0) {
            fail("recv");
        }
        data += n;
        size -= static_cast<std::size_t>(n);
    }
}

void serve_connection(int fd) {
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    char buffer[65536];
    ssize_t n;
    while ((n = recv(fd, buffer, sizeof(buffer), 0)) > 0) {
        if (send(fd, buffer, static_cast<std::size_t>(n), MSG_NOSIGNAL) != n) {
            break;
        }
    }
    close(fd);
}

int serve(const Options& options) {
    const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener < 0) {
        fail("socket");
    }
    const int one = 1;
    set_option(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    const auto address = address_of(options.host.empty() ? "0.0.0.0" : options.host, options.port);
    if (bind(listener, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
        fail("bind");
    }
    if (listen(listener, 128) != 0) {
        fail("listen");
    }
    std::cout << "listening on port " << options.port << '\n' << std::flush;
    while (true) {
        const int fd = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            fail("accept");
        }
        std::thread(serve_connection, fd).detach();
    }
}

nlohmann::json summary(const char* test, std::vector<double>& micros, double seconds) {
    std::sort(micros.begin(), micros.end());
    double total = 0;
    for (const auto value : micros) {
        total += value;
    }
    const auto at = [&](double quantile) {
        return micros[static_cast<std::size_t>(quantile * static_cast<double>(micros.size() - 1))];
    };
    return {{"test", test},
            {"transactions", micros.size()},
            {"seconds", seconds},
            {"tps", static_cast<double>(micros.size()) / seconds},
            {"mean_us", total / static_cast<double>(micros.size())},
            {"p50_us", at(0.5)},
            {"p99_us", at(0.99)}};
}

double micros_since(Clock::time_point start) {
    return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

nlohmann::json request_response(const Options& options) {
    const auto address = address_of(options.host, options.port);
    const int fd = connect_to(address, options.timeout_ms);
    std::vector<char> buffer(static_cast<std::size_t>(options.size), 'x');
    const auto round_trip = [&] {
        send_all(fd, buffer.data(), buffer.size());
        receive_all(fd, buffer.data(), buffer.size());
    };
    for (int i = 0; i < options.warmup; ++i) {
        round_trip();
    }
    std::vector<double> micros;
    micros.reserve(static_cast<std::size_t>(options.transactions));
    const auto start = Clock::now();
    for (int i = 0; i < options.transactions; ++i) {
        const auto begin = Clock::now();
        round_trip();
        micros.push_back(micros_since(begin));
    }
    const double seconds = micros_since(start) / 1e6;
    close(fd);
    return summary("rr", micros, seconds);
}

nlohmann::json connect_request_response(const Options& options) {
    const auto address = address_of(options.host, options.port);
    std::vector<char> buffer(static_cast<std::size_t>(options.size), 'x');
    const auto transaction = [&] {
        const int fd = connect_to(address, options.timeout_ms);
        send_all(fd, buffer.data(), buffer.size());
        receive_all(fd, buffer.data(), buffer.size());
        close(fd);
    };
    for (int i = 0; i < options.warmup; ++i) {
        transaction();
    }
    std::vector<double> micros;
    micros.reserve(static_cast<std::size_t>(options.transactions));
    const auto start = Clock::now();
    for (int i = 0; i < options.transactions; ++i) {
        const auto begin = Clock::now();
        transaction();
        micros.push_back(micros_since(begin));
    }
    const double seconds = micros_since(start) / 1e6;
    return summary("crr", micros, seconds);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"TCP request/response measurements (like netperf TCP_RR and TCP_CRR)", "lab_perf"};
    app.require_subcommand(1);
    Options options;
    auto* server =
        app.add_subcommand("server", "Echo every byte received, one thread per connection");
    server->add_option("--host", options.host, "Address to listen on (default all)");
    server->add_option("--port", options.port)->capture_default_str();
    auto* rr = app.add_subcommand("rr", "Round trips on one connection");
    auto* crr = app.add_subcommand("crr", "One connection per round trip");
    for (auto* client : {rr, crr}) {
        client->add_option("--host", options.host, "Server IPv4 address")->required();
        client->add_option("--port", options.port)->capture_default_str();
        client->add_option("--transactions", options.transactions, "Timed transactions")
            ->check(CLI::PositiveNumber)
            ->capture_default_str();
        client->add_option("--warmup", options.warmup, "Untimed transactions first")
            ->check(CLI::NonNegativeNumber)
            ->capture_default_str();
        client->add_option("--size", options.size, "Bytes per request and response")
            ->check(CLI::PositiveNumber)
            ->capture_default_str();
        client->add_option("--timeout-ms", options.timeout_ms, "Per send/receive/connect")
            ->check(CLI::PositiveNumber)
            ->capture_default_str();
    }
    CLI11_PARSE(app, argc, argv);
    try {
        if (server->parsed()) {
            return serve(options);
        }
        const auto result =
            rr->parsed() ? request_response(options) : connect_request_response(options);
        std::cout << result.dump() << '\n';
        return 0;
    } catch (const std::exception& error) {
        std::cerr << "lab_perf: " << error.what() << '\n';
        return 1;
    }
}
