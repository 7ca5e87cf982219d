// The client and the server over real sockets on loopback: pipelined batches, answers written
// together, connections the peer closes, and deadlines.
#include "calcmesh/http_client.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <thread>

#include "calcmesh/http_server.hpp"
#include "http_test_support.hpp"

namespace calcmesh {
namespace {

using namespace std::chrono_literals;

/// An HttpServer on a free loopback port, on its own thread. GET /echo?n=N answers N, after
/// `delay_ms` milliseconds if the query has one.
class EchoServer {
  public:
    explicit EchoServer(std::size_t max_connections = 1024)
        : server_(routes(), options(max_connections)) {}
    Url url() const { return {"127.0.0.1", std::to_string(port()), ""}; }
    unsigned short port() const { return server_.http().port(); }

  private:
    static Router routes() {
        Router router;
        router.add(http::verb::get, "/echo", [](Request request) -> Task<Response> {
            if (const auto delay = request.query_param("delay_ms")) {
                net::steady_timer timer(co_await net::this_coro::executor,
                                        std::chrono::milliseconds(std::stoi(std::string(*delay))));
                co_await timer.async_wait(net::use_awaitable);
            }
            co_return text_response(200, std::string(request.query_param("n").value_or("")),
                                    "text/plain");
        });
        return router;
    }
    static HttpServerOptions options(std::size_t max_connections) {
        HttpServerOptions options;
        options.max_connections = max_connections;
        return options;
    }

    testing::ThreadedServer server_;
};

/// Runs `count` concurrent GET /echo?n=i through `client` from one loop turn and returns
/// each answer (or error message) in order.
std::vector<std::string> echo_all(net::io_context& context, HttpClient& client, const Url& url,
                                  int count, std::chrono::milliseconds timeout = 5s) {
    std::vector<std::string> answers(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) {
        net::co_spawn(
            context,
            [&, i]() -> Task<void> {
                auto response = co_await client.send(
                    http::verb::get, url, "/echo?n=" + std::to_string(i), {}, {}, timeout, "echo");
                answers[static_cast<std::size_t>(i)] =
                    response ? response.value().body : "error: " + response.error().message;
            },
            net::detached);
    }
    context.run();
    context.restart();
    return answers;
}

std::vector<std::string> numbers(int count) {
    std::vector<std::string> expected;
    expected.reserve(count);
    for (int i = 0; i < count; ++i) {
        expected.push_back(std::to_string(i));
    }
    return expected;
}

TEST(HttpPipelining, ConcurrentRequestsShareConnectionsUpToTheDepth) {
    EchoServer server;
    net::io_context context;
    HttpClient pipelined(context.get_executor(), 8);
    EXPECT_EQ(echo_all(context, pipelined, server.url(), 20), numbers(20));
    EXPECT_EQ(pipelined.connections(), 3u);  // 8 + 8 + 4

    HttpClient pool(context.get_executor(), 1);
    EXPECT_EQ(echo_all(context, pool, server.url(), 20), numbers(20));
    EXPECT_EQ(pool.connections(), 20u);
    // Kept-alive connections are reused by the next requests.
    EXPECT_EQ(echo_all(context, pipelined, server.url(), 20), numbers(20));
    EXPECT_EQ(pipelined.connections(), 3u);
}

TEST(HttpPipelining, AtTheConnectionBoundRequestsWaitInLineInsteadOfOpeningMore) {
    // The server's own cap is 2 per thread: a client past it would see connections closed
    // under it or refused. With the bound at 2, 40 concurrent requests are all answered on 2.
    EchoServer server(2);
    net::io_context context;
    HttpClient bounded(context.get_executor(), 1, 64, 2);
    EXPECT_EQ(echo_all(context, bounded, server.url(), 40), numbers(40));
    EXPECT_EQ(bounded.connections(), 2u);
}

/// A blocking loopback connection to `port`.
tcp::socket connect_to(net::io_context& context, unsigned short port) {
    tcp::socket socket(context);
    socket.connect({net::ip::make_address("127.0.0.1"), port});
    return socket;
}

TEST(HttpPipelining, AnswersToRequestsThatArrivedTogetherAreWrittenTogether) {
    EchoServer server;
    net::io_context context;
    auto socket = connect_to(context, server.port());
    // One write, three requests; the last one takes 50 ms to answer.
    const std::string requests =
        "GET /echo?n=1 HTTP/1.1\r\nHost: x\r\n\r\n"
        "GET /echo?n=2 HTTP/1.1\r\nHost: x\r\n\r\n"
        "GET /echo?n=3&delay_ms=50 HTTP/1.1\r\nHost: x\r\n\r\n";
    net::write(socket, net::buffer(requests));
    std::string received(64 * 1024, '\0');
    const auto first_read = socket.read_some(net::buffer(received));
    received.resize(first_read);
    // All three answers, in order, came in the first segment: the first two were held back
    // until the third was ready.
    std::vector<std::string> bodies;
    beast::flat_buffer buffer;
    net::buffer_copy(buffer.prepare(received.size()), net::buffer(received));
    buffer.commit(received.size());
    for (int i = 0; i < 3 && buffer.size() > 0; ++i) {
        http::response_parser<http::string_body> parser;
        parser.eager(true);
        boost::system::error_code ec;
        buffer.consume(parser.put(buffer.data(), ec));
        if (ec || !parser.is_done()) {
            break;
        }
        bodies.push_back(parser.get().body());
    }
    EXPECT_EQ(bodies, (std::vector<std::string>{"1", "2", "3"})) << received;
}

/// A raw HTTP peer on its own thread: answers the first request of each connection with the
/// given `Connection` header ("keep-alive" or "close"), then closes the connection.
class ClosingPeer {
  public:
    explicit ClosingPeer(const std::string& connection_header)
        : acceptor_(context_, {net::ip::make_address("127.0.0.1"), 0}) {
        thread_ = std::thread([this, connection_header] {
            for (;;) {
                boost::system::error_code ec;
                auto socket = acceptor_.accept(ec);
                if (ec) {
                    return;
                }
                ++accepted_;
                beast::flat_buffer buffer;
                http::request<http::string_body> request;
                http::read(socket, buffer, request, ec);
                if (!ec) {
                    const std::string answer =
                        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: " + connection_header +
                        "\r\n\r\nok";
                    net::write(socket, net::buffer(answer), ec);
                }
                socket.shutdown(tcp::socket::shutdown_both, ec);
                socket.close(ec);
            }
        });
    }
    ~ClosingPeer() {
        ::shutdown(acceptor_.native_handle(), SHUT_RDWR);  // wakes the blocked accept
        thread_.join();
    }
    Url url() const { return {"127.0.0.1", std::to_string(acceptor_.local_endpoint().port()), ""}; }
    int accepted() const { return accepted_; }

  private:
    net::io_context context_;
    tcp::acceptor acceptor_;
    std::atomic<int> accepted_{0};
    std::thread thread_;
};

Result<ClientResponse> get(net::io_context& context, HttpClient& client, const Url& url,
                           std::chrono::milliseconds timeout = 5s) {
    std::optional<Result<ClientResponse>> result;
    net::co_spawn(
        context,
        [&]() -> Task<void> {
            result = co_await client.send(http::verb::get, url, "/", {}, {}, timeout, "peer");
        },
        net::detached);
    context.run();
    context.restart();
    return std::move(result).value();
}

TEST(HttpPipelining, ARequestOnAConnectionThePeerClosedGoesOnceMoreOnAFreshOne) {
    ClosingPeer peer("keep-alive");
    net::io_context context;
    HttpClient client(context.get_executor(), 4);
    ASSERT_TRUE(get(context, client, peer.url()));
    std::this_thread::sleep_for(50ms);  // the peer has closed the kept-alive connection
    const auto again = get(context, client, peer.url());
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_EQ(again.value().body, "ok");
    EXPECT_EQ(peer.accepted(), 2);
}

TEST(HttpPipelining, RequestsBehindAnAnswerThatClosesTheConnectionGoOnFreshOnes) {
    ClosingPeer peer("close");
    net::io_context context;
    HttpClient client(context.get_executor(), 4);
    EXPECT_EQ(echo_all(context, client, peer.url(), 3), (std::vector<std::string>(3, "ok")));
    EXPECT_EQ(peer.accepted(), 3);
    EXPECT_EQ(client.connections(), 0u);
}

TEST(HttpPipelining, RequestsToAPeerThatNeverAnswersTimeOut) {
    // A listening socket that accepts (in the kernel) but never reads or answers.
    net::io_context context;
    tcp::acceptor silent(context, {net::ip::make_address("127.0.0.1"), 0});
    const Url url{"127.0.0.1", std::to_string(silent.local_endpoint().port()), ""};
    HttpClient client(context.get_executor(), 4);
    const auto started = std::chrono::steady_clock::now();
    const auto answers = echo_all(context, client, url, 3, 200ms);
    EXPECT_GE(std::chrono::steady_clock::now() - started, 200ms);
    for (const auto& answer : answers) {
        EXPECT_EQ(answer, "error: echo at " + url.host_port() + " did not answer within 200 ms");
    }
}

/// A blocking loopback connection that sends one keep-alive GET /echo when opened.
class RawConnection : public testing::LoopbackConnection {
  public:
    explicit RawConnection(unsigned short port, std::string_view query = "n=7")
        : LoopbackConnection(port) {
        send("GET /echo?" + std::string(query) + " HTTP/1.1\r\nHost: x\r\n\r\n");
    }
};

TEST(HttpServerLimits, PastTheCapAnIdleConnectionMakesRoomForANewOne) {
    EchoServer server(2);
    RawConnection first(server.port());
    ASSERT_TRUE(first.readable_within(5s));
    RawConnection second(server.port());
    ASSERT_TRUE(second.readable_within(5s));
    RawConnection third(server.port());
    EXPECT_TRUE(third.readable_within(5s)) << "answered: the oldest idle connection made room";
    const auto closed = first.read_until_closed(5s);
    ASSERT_TRUE(closed) << "the oldest idle connection is closed (not left to its idle timeout)";
    EXPECT_NE(closed->find("\r\n\r\n7"), std::string::npos) << "its answer, then the close";
}

TEST(HttpServerLimits, WhileEveryConnectionIsBusyANewOneIsRefusedAtOnceAndClosed) {
    EchoServer server(2);
    RawConnection first(server.port(), "n=1&delay_ms=1000");
    RawConnection second(server.port(), "n=2&delay_ms=1000");
    std::this_thread::sleep_for(100ms);  // both requests are being handled
    RawConnection third(server.port());
    const auto refused = third.read_until_closed(500ms);
    ASSERT_TRUE(refused) << "answered and closed at once, not left waiting in the accept queue";
    EXPECT_TRUE(refused->starts_with("HTTP/1.1 503")) << *refused;
    EXPECT_NE(refused->find("Retry-After: 1\r\n"), std::string::npos) << *refused;
    EXPECT_NE(refused->find("Connection: close\r\n"), std::string::npos) << *refused;
    EXPECT_NE(refused->find("\"overloaded\""), std::string::npos) << *refused;
    EXPECT_NE(refused->find("max-connections"), std::string::npos) << *refused;
    // The busy ones are answered as if nothing happened, and then there is room again.
    EXPECT_TRUE(first.readable_within(5s));
    EXPECT_TRUE(second.readable_within(5s));
    testing::LoopbackConnection fourth(server.port());
    fourth.send("GET /echo?n=4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const auto served = fourth.read_until_closed(5s);
    ASSERT_TRUE(served);
    EXPECT_TRUE(served->starts_with("HTTP/1.1 200")) << *served;
}

TEST(HttpServerLimits, ANewConnectionIsNeverClosedAsIdleBeforeItsFirstAnswer) {
    EchoServer server(2);
    // Connected, its request not sent yet: it is not idle, its request may be on its way.
    testing::LoopbackConnection fresh(server.port());
    RawConnection answered(server.port());
    ASSERT_TRUE(answered.readable_within(5s));
    std::this_thread::sleep_for(50ms);  // `answered` is idle now
    RawConnection third(server.port());
    ASSERT_TRUE(third.readable_within(5s));
    EXPECT_NE(answered.read_until_closed(5s).value_or("").find("\r\n\r\n7"), std::string::npos)
        << "the kept-alive idle one made room, after its answer";
    fresh.send("GET /echo?n=5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const auto late = fresh.read_until_closed(5s);
    ASSERT_TRUE(late);
    EXPECT_TRUE(late->starts_with("HTTP/1.1 200")) << *late;
    EXPECT_NE(late->find("\r\n\r\n5"), std::string::npos) << *late;
}

}  // namespace
}  // namespace calcmesh
