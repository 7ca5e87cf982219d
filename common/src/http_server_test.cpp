// HttpServer over real sockets: a request counts as in flight from the moment it is read until
// its answer is written or its connection ends, whatever the request held. A count left
// behind makes every later shutdown wait out its whole drain timeout.
#include "calcmesh/http_server.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

#include "http_test_support.hpp"

namespace calcmesh {
namespace {

using namespace std::chrono_literals;

/// An HttpServer on a free loopback port, on its own thread, with a route like a worker's:
/// GET /compute?a=N answers N, and 400 quoting `a` when it is not a number, as the services'
/// handlers do. GET /throw breaks the handlers' contract and throws.
class Server {
  public:
    Server() : server_(routes()) {}
    HttpServer& http() { return server_.http(); }

    /// Whether the requests in flight drop to 0 within `wait`. The answer reaches the client
    /// just before its request stops counting, so the test polls instead of reading once.
    bool drained_within(std::chrono::milliseconds wait) const {
        const auto deadline = std::chrono::steady_clock::now() + wait;
        while (server_.http().in_flight() > 0) {
            if (std::chrono::steady_clock::now() > deadline) {
                return false;
            }
            std::this_thread::sleep_for(5ms);
        }
        return true;
    }

  private:
    static Router routes() {
        Router router;
        router.add(http::verb::get, "/compute", [](Request request) -> Task<Response> {
            const std::string a(request.query_param("a").value_or(""));
            if (a.empty() || a.find_first_not_of("0123456789") != std::string::npos) {
                co_return error_response(
                    {ErrorCode::invalid_field, "a must be an integer, got '" + a + "'", "a"});
            }
            co_return text_response(200, a, "text/plain");
        });
        router.add(http::verb::get, "/throw", [](Request) -> Task<Response> {
            throw std::runtime_error("a handler that breaks its contract");
            co_return text_response(200, "unreachable", "text/plain");
        });
        return router;
    }

    testing::ThreadedServer server_;
};

using Client = testing::LoopbackConnection;

TEST(HttpServerInFlight, RequestsQuotingBytesThatAreNotUtf8AreAnsweredAndStopCounting) {
    // Error answers quote the request's path or a query value, and these bytes are not UTF-8
    // (found by mutating valid requests: a flipped bit, an inserted byte).
    struct Case {
        std::string what;
        std::string request;
        std::string status;
    };
    const std::vector<Case> cases = {
        {"0xad in an unknown path",
         "GET /\xad"
         "compute?a=7 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
         "404"},
        {"0xf5 in an unknown path with a body",
         "POST /s\xf5"
         "bmit HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
         "404"},
        {"0x81 in a query value",
         "GET /compute?a=7\x81&b=2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "400"},
        {"%FF in a query value",
         "GET /compute?a=%FF HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "400"},
    };
    Server server;
    for (const auto& c : cases) {
        SCOPED_TRACE(c.what);
        Client client(server.http().port());
        client.send(c.request);
        const auto answer = client.read_until_closed(5s);
        ASSERT_TRUE(answer) << "Connection: close ends the connection after the answer";
        EXPECT_EQ(answer->rfind("HTTP/1.1 " + c.status, 0), 0u) << *answer;
        const auto body_at = answer->find("\r\n\r\n");
        const auto body = nlohmann::json::parse(
            body_at == std::string::npos ? "" : answer->substr(body_at + 4), nullptr, false);
        EXPECT_TRUE(body.is_object() && body["error"]["message"].get<std::string>().find(
                                            "\xef\xbf\xbd") != std::string::npos)
            << "a JSON error whose message shows the offending byte as U+FFFD: " << *answer;
    }
    EXPECT_TRUE(server.drained_within(1s)) << server.http().in_flight() << " still in flight";
    server.http().stop_accepting();
    EXPECT_TRUE(server.drained_within(1s)) << server.http().in_flight() << " still in flight";
}

TEST(HttpServerInFlight, AHandlerThatThrowsEndsItsConnectionWithoutHoldingTheDrain) {
    Server server;
    Client throws(server.http().port());
    throws.send("GET /throw HTTP/1.1\r\nHost: x\r\n\r\n");
    const auto answer = throws.read_until_closed(5s);
    ASSERT_TRUE(answer) << "the connection ends";
    EXPECT_EQ(*answer, "") << "there is no answer to write";
    EXPECT_TRUE(server.drained_within(1s)) << server.http().in_flight() << " still in flight";

    // The server goes on serving, and stopping closes a connection kept alive after its
    // answer. (Once nothing counts in flight the answer is written and the connection idle.)
    Client idle(server.http().port());
    idle.send("GET /compute?a=7 HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_TRUE(idle.readable_within(5s));
    EXPECT_TRUE(server.drained_within(1s)) << server.http().in_flight() << " still in flight";
    server.http().stop_accepting();
    const auto closed = idle.read_until_closed(5s);
    ASSERT_TRUE(closed) << "the idle connection is closed";
    EXPECT_EQ(closed->rfind("HTTP/1.1 200", 0), 0u) << *closed;
    EXPECT_TRUE(closed->ends_with("\r\n\r\n7")) << *closed;
}

TEST(HttpServerInFlight, AConnectionStillOpenWhenTheServerIsGoneEndsWithItsIoContext) {
    // A service's loops outlive its server: a connection still open then ends when its
    // io_context is destroyed, and what it does as it ends must not reach the server.
    std::optional<Client> idle;
    {
        Server server;
        idle.emplace(server.http().port());
        idle->send("GET /compute?a=7 HTTP/1.1\r\nHost: x\r\n\r\n");
        ASSERT_TRUE(idle->readable_within(5s));
    }
    const auto closed = idle->read_until_closed(5s);
    ASSERT_TRUE(closed) << "the connection ends with the io_context";
    EXPECT_EQ(closed->rfind("HTTP/1.1 200", 0), 0u) << *closed;
}

}  // namespace
}  // namespace calcmesh
