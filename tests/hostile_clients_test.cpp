// Clients that break the rules of HTTP, against the real services on real sockets: each gets
// its exact answer, and the services go on serving and drain at once on SIGTERM.

#include <gtest/gtest.h>

#include <atomic>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "calcmesh/arithmetic.hpp"
#include "calcmesh/worker_urls.hpp"
#include "raw_connection.hpp"
#include "service_process.hpp"

namespace calcmesh::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

/// Short enough for the tests to see connections closed by it.
constexpr auto kReadTimeoutMs = 1500;

/// log_collector, the four workers, job_submitter and help_page, each with `extra_args`.
class Services {
  public:
    Services(const std::string& name, const std::vector<std::string>& extra_args) : dir_(name) {
        const auto with_extra = [&](std::vector<std::string> args) {
            args.insert(args.end(), extra_args.begin(), extra_args.end());
            return args;
        };
        collector_ = std::make_unique<ServiceProcess>(
            "log_collector", with_extra({"--data-dir", (dir_.path() / "data").string()}),
            dir_.path());
        std::vector<std::string> urls;
        for (const auto operation : kAllOperations) {
            workers_.push_back(std::make_unique<ServiceProcess>(
                "worker",
                with_extra({"--operation", std::string(operation_name(operation)),
                            "--log-collector-url", collector_->url()}),
                dir_.path()));
            urls.push_back("--" + std::string(operation_name(operation)) + "-worker-url");
            urls.push_back(workers_.back()->url());
        }
        submitter_ =
            std::make_unique<ServiceProcess>("job_submitter", with_extra(urls), dir_.path());
        help_ = std::make_unique<ServiceProcess>("help_page", with_extra(urls), dir_.path());
    }

    ServiceProcess& submitter() { return *submitter_; }
    ServiceProcess& help() { return *help_; }
    ServiceProcess& collector() { return *collector_; }
    ServiceProcess& adder() { return *workers_.front(); }
    std::vector<ServiceProcess*> all() {
        std::vector<ServiceProcess*> services = {submitter_.get(), help_.get(), collector_.get()};
        for (auto& worker : workers_) {
            services.push_back(worker.get());
        }
        return services;
    }

  private:
    TempDir dir_;
    std::unique_ptr<ServiceProcess> collector_;
    std::vector<std::unique_ptr<ServiceProcess>> workers_;
    std::unique_ptr<ServiceProcess> submitter_;
    std::unique_ptr<ServiceProcess> help_;
};

/// Every service still answers, and stops on SIGTERM without waiting for a request that is
/// no longer there.
void expect_serving_then_clean_drain(Services& services) {
    for (auto* service : services.all()) {
        EXPECT_EQ(get(service->url() + "/healthz").status, 200u) << service->output();
    }
    for (auto* service : services.all()) {
        const auto started = std::chrono::steady_clock::now();
        EXPECT_EQ(service->stop(), 0);
        const auto took = std::chrono::steady_clock::now() - started;
        const auto output = service->output();
        EXPECT_LT(took, 3s) << "the drain waits for nothing:\n" << output;
        EXPECT_EQ(output.find("event=drain_timeout"), std::string::npos) << output;
    }
}

std::string http_request(const std::string& request_line, const std::string& content_type,
                         const std::string& body) {
    std::string text = request_line + "\r\nHost: calcmesh\r\nConnection: close\r\n";
    if (!content_type.empty()) {
        text += "Content-Type: " + content_type + "\r\n";
    }
    return text + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

/// A few bytes flipped, inserted or deleted.
std::string mutate(std::string text, std::mt19937& random) {
    std::uniform_int_distribution<int> edits(1, 3);
    std::uniform_int_distribution<int> kind(0, 2);
    std::uniform_int_distribution<int> byte(0, 255);
    for (int n = edits(random); n > 0 && !text.empty(); --n) {
        const auto at = std::uniform_int_distribution<std::size_t>(0, text.size() - 1)(random);
        switch (kind(random)) {
            case 0:
                text[at] = static_cast<char>(text[at] ^ (1 << (byte(random) % 8)));
                break;
            case 1:
                text.insert(at, 1, static_cast<char>(byte(random)));
                break;
            default:
                text.erase(at, 1);
        }
    }
    return text;
}

TEST(HostileClients, MutatedRequestsAreAnsweredOrClosedAndLeaveNothingBehind) {
    Services services("mutated", {"--request-read-timeout-ms", std::to_string(kReadTimeoutMs)});
    const std::string record =
        R"({"record_id":"r-hostile-1","job_id":"j-hostile-1","operation":"addition","a":1,"b":2,)"
        R"("result":3,"mechanism":"http","worker":"addition_worker","instance":"test",)"
        R"("cluster":"local","node":"test","received_at":"2026-12-06T00:00:00.000Z",)"
        R"("completed_at":"2026-12-06T00:00:00.001Z"})";
    struct Base {
        ServiceProcess* service;
        std::string request;
    };
    const std::vector<Base> bases = {
        {&services.submitter(),
         http_request("POST /submit HTTP/1.1", "application/json",
                      R"({"operation":"add","a":1,"b":2,"mechanism":"http"})")},
        {&services.submitter(),
         http_request("POST /submit HTTP/1.1", "application/x-www-form-urlencoded",
                      "operation=mul&a=6&b=7&mechanism=http")},
        {&services.adder(), http_request("GET /compute?a=7&b=2&job_id=j-1 HTTP/1.1", "", "")},
        {&services.collector(),
         http_request("POST /save_log HTTP/1.1", "application/json", record)},
        {&services.collector(), http_request("GET /logs?limit=5 HTTP/1.1", "", "")},
        {&services.help(), http_request("GET / HTTP/1.1", "", "")},
    };
    // What a mutated request may get: its answer if it is still valid, or the refusal of what
    // is wrong with it. Never 5xx.
    const std::set<unsigned> allowed = {200, 201, 400, 404, 405, 413, 415, 431};
    constexpr int kRequests = 600;
    std::mt19937 random(20261206);
    std::vector<std::pair<ServiceProcess*, std::string>> requests;
    for (int i = 0; i < kRequests; ++i) {
        const auto& base = bases[static_cast<std::size_t>(i) % bases.size()];
        requests.emplace_back(base.service, mutate(base.request, random));
    }
    // Several at once: a request left incomplete by its mutation waits for the read timeout.
    std::mutex mutex;
    std::map<std::string, int> outcomes;
    std::atomic<std::size_t> next{0};
    constexpr int kClients = 24;
    std::vector<std::thread> clients;
    clients.reserve(kClients);
    for (int client = 0; client < kClients; ++client) {
        clients.emplace_back([&] {
            for (std::size_t i; (i = next++) < requests.size();) {
                const auto& [service, request] = requests[i];
                RawConnection connection(service->port());
                connection.send(request);
                const auto reply =
                    connection.receive(std::chrono::milliseconds(kReadTimeoutMs) + 3s);
                const auto status = reply.status();
                std::lock_guard lock(mutex);
                if (status) {
                    EXPECT_TRUE(allowed.contains(*status)) << "request " << i << ":\n"
                                                           << request << "\nanswer:\n"
                                                           << reply.bytes;
                    outcomes[std::to_string(*status)]++;
                } else {
                    // Only a request whose framing now asks for more bytes than were sent may
                    // go unanswered, closed by the read timeout.
                    EXPECT_TRUE(reply.closed && reply.bytes.empty())
                        << "request " << i << " was neither answered nor closed:\n"
                        << request << "\ngot:\n"
                        << reply.bytes;
                    outcomes["closed unanswered"]++;
                }
            }
        });
    }
    for (auto& client : clients) {
        client.join();
    }
    std::cout << "[figure] " << kRequests << " mutated requests (seed 20261206):";
    for (const auto& [outcome, count] : outcomes) {
        std::cout << " " << outcome << "=" << count;
    }
    std::cout << "\n";
    EXPECT_GT(outcomes["400"], 0);
    expect_serving_then_clean_drain(services);
}

TEST(HostileClients, BrokenFramingGetsItsExactAnswer) {
    Services services("framing", {"--request-read-timeout-ms", std::to_string(kReadTimeoutMs)});
    const std::string head =
        "POST /submit HTTP/1.1\r\nHost: calcmesh\r\nContent-Type: application/json\r\n";
    const std::string job = R"({"operation":"add","a":1,"b":2})";
    struct Case {
        std::string what;
        std::string request;
        unsigned status;
        std::string code;
    };
    const std::vector<Case> cases = {
        {"headers over 8 KiB",
         "GET /healthz HTTP/1.1\r\nHost: calcmesh\r\nX-Padding: " + std::string(9000, 'p') +
             "\r\n\r\n",
         431, "headers_too_large"},
        {"a Content-Length of 1 TB and no body", head + "Content-Length: 1000000000000\r\n\r\n",
         413, "payload_too_large"},
        {"a chunk size that is not hexadecimal",
         head + "Transfer-Encoding: chunked\r\n\r\nzz\r\n" + job + "\r\n0\r\n\r\n", 400,
         "invalid_field"},
        {"a chunk longer than its size",
         head + "Transfer-Encoding: chunked\r\n\r\n4\r\n" + job + "\r\n0\r\n\r\n", 400,
         "invalid_field"},
        {"two equal Content-Length headers",
         head + "Content-Length: " + std::to_string(job.size()) +
             "\r\nContent-Length: " + std::to_string(job.size()) + "\r\n\r\n" + job,
         400, "invalid_field"},
        {"two different Content-Length headers",
         head + "Content-Length: " + std::to_string(job.size()) +
             "\r\nContent-Length: " + std::to_string(job.size() + 1) + "\r\n\r\n" + job + "}",
         400, "invalid_field"},
        {"Content-Length and chunked together",
         head + "Content-Length: " + std::to_string(job.size()) +
             "\r\nTransfer-Encoding: chunked\r\n\r\n" + job,
         400, "invalid_field"},
    };
    for (const auto& c : cases) {
        RawConnection connection(services.submitter().port());
        connection.send(c.request);
        // Shorter than the read timeout: the answer comes without waiting for more bytes.
        const auto reply = connection.receive(std::chrono::milliseconds(kReadTimeoutMs / 2));
        ASSERT_EQ(reply.status(), c.status) << c.what << ":\n" << reply.bytes;
        const auto body = json::parse(reply.body(), nullptr, false);
        ASSERT_TRUE(body.is_object()) << c.what << ":\n" << reply.bytes;
        EXPECT_EQ(body["error"]["code"], c.code) << c.what;
        EXPECT_FALSE(body["error"]["message"].get<std::string>().empty()) << c.what;
        EXPECT_EQ(reply.header("Connection"), "close") << c.what;
        // Nothing was done, and the service goes on.
        const auto after = post(services.submitter().url() + "/submit",
                                R"({"operation":"add","a":40,"b":2,"mechanism":"http"})");
        EXPECT_EQ(after.status, 200u) << c.what << ": " << after.body;
    }
    expect_serving_then_clean_drain(services);
}

TEST(HostileClients, SlowHeadersAreClosedByTheReadTimeoutAndDoNotStarveRealJobs) {
    // A low connection cap, so that the slow connections fill it many times over.
    constexpr int kSlow = 600;
    Services services("slow-headers", {"--request-read-timeout-ms", std::to_string(kReadTimeoutMs),
                                       "--threads", "2", "--max-connections", "100"});
    std::vector<std::unique_ptr<RawConnection>> slow;
    const auto opened = std::chrono::steady_clock::now();
    for (int i = 0; i < kSlow; ++i) {
        slow.push_back(std::make_unique<RawConnection>(services.submitter().port()));
        slow.back()->send("POST /submit HTTP/1.1\r\nHost: calcmesh\r\nContent-Type: appl");
    }
    // Real jobs meanwhile, each on a new connection, as new clients come.
    int completed = 0;
    for (int i = 0; i < 40; ++i) {
        const auto response =
            post(services.submitter().url() + "/submit",
                 json{{"operation", "add"}, {"a", i}, {"b", 1}, {"mechanism", "http"}}.dump());
        ASSERT_EQ(response.status, 200u) << response.body;
        EXPECT_EQ(json::parse(response.body)["result"], i + 1);
        ++completed;
    }
    const auto jobs_done = std::chrono::steady_clock::now();
    ASSERT_TRUE(eventually(
        [&] {
            return std::all_of(slow.begin(), slow.end(),
                               [](auto& connection) { return connection->closed_by_service(); });
        },
        std::chrono::milliseconds(kReadTimeoutMs) + 10s))
        << std::count_if(slow.begin(), slow.end(),
                         [](auto& connection) { return !connection->closed_by_service(); })
        << " slow connections are still open";
    const auto all_closed = std::chrono::steady_clock::now();
    std::cout << "[figure] " << completed << " jobs answered while " << kSlow
              << " connections sent half a header: "
              << std::chrono::duration<double>(jobs_done - opened).count() << " s; every slow one "
              << "closed " << std::chrono::duration<double>(all_closed - opened).count()
              << " s after they opened (read timeout " << kReadTimeoutMs << " ms)\n";
    expect_serving_then_clean_drain(services);
}

}  // namespace
}  // namespace calcmesh::testing
