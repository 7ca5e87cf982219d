#include "forwarder.hpp"

#include <fmt/format.h>
#include <sys/socket.h>

#include <array>
#include <memory>

#include "calcmesh/asio.hpp"
#include "process.hpp"

namespace calcmesh::lab {

namespace {

// Copies one direction until it ends, then passes the end on (half-close).
Task<void> pump(std::shared_ptr<tcp::socket> from, std::shared_ptr<tcp::socket> to) {
    std::array<char, 16384> buffer;
    boost::system::error_code error;
    while (true) {
        const auto n = co_await from->async_read_some(
            net::buffer(buffer), net::redirect_error(net::use_awaitable, error));
        if (error) {
            break;
        }
        co_await net::async_write(*to, net::buffer(buffer.data(), n),
                                  net::redirect_error(net::use_awaitable, error));
        if (error) {
            break;
        }
    }
    to->shutdown(tcp::socket::shutdown_send, error);
}

Task<void> relay(tcp::socket downstream, std::string netns, tcp::endpoint target) {
    auto executor = co_await net::this_coro::executor;
    // A socket belongs to the namespace it was created in; creating it on a thread that joined
    // the client pod's namespace puts the whole connection there.
    const int fd = in_netns(netns, [] { return socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); });
    auto upstream = std::make_shared<tcp::socket>(executor);
    boost::system::error_code error;
    upstream->assign(tcp::v4(), fd, error);
    if (!error) {
        co_await upstream->async_connect(target, net::redirect_error(net::use_awaitable, error));
    }
    if (error) {
        fmt::print(stderr, "forward to {}: {}\n", target.address().to_string(), error.message());
        co_return;
    }
    auto client = std::make_shared<tcp::socket>(std::move(downstream));
    net::co_spawn(executor, pump(client, upstream), net::detached);
    net::co_spawn(executor, pump(upstream, client), net::detached);
}

Task<void> accept_loop(std::shared_ptr<tcp::acceptor> acceptor, std::string netns,
                       tcp::endpoint target) {
    auto executor = co_await net::this_coro::executor;
    while (true) {
        auto socket = co_await acceptor->async_accept(net::use_awaitable);
        net::co_spawn(executor, relay(std::move(socket), netns, target), net::detached);
    }
}

}  // namespace

void run_forwarder(const Topology& topology, const std::vector<Forward>& forwards,
                   const std::function<void(const std::string&)>& on_ready) {
    net::io_context io;
    const auto client_netns = topology.netns(Topology::kClientPod);
    for (const auto& forward : forwards) {
        const auto& pod = topology.pod(forward.pod);
        auto acceptor = std::make_shared<tcp::acceptor>(
            io, tcp::endpoint(net::ip::address_v4::loopback(), forward.listen_port));
        const tcp::endpoint target(net::ip::address_v4(pod.ip.value), forward.pod_port);
        on_ready(fmt::format("forwarding 127.0.0.1:{} -> {} {}:{} (connecting from pod {})",
                             acceptor->local_endpoint().port(), pod.name, pod.ip.str(),
                             forward.pod_port, Topology::kClientPod));
        net::co_spawn(io, accept_loop(acceptor, client_netns, target), net::detached);
    }
    net::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&io](const boost::system::error_code&, int) { io.stop(); });
    io.run();
}

}  // namespace calcmesh::lab
