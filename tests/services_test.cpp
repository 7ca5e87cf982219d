// The services as a user meets them: real processes on real sockets.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <thread>

#include "calcmesh/arithmetic.hpp"
#include "calcmesh/job.hpp"
#include "calcmesh/process.hpp"
#include "calcmesh/worker_urls.hpp"
#include "service_process.hpp"

namespace calcmesh::testing {
namespace {

using nlohmann::json;

/// A whole system: log_collector, the four workers, job_submitter and help_page.
class System {
  public:
    explicit System(const std::string& name, std::vector<std::string> submitter_args = {})
        : dir_(name), data_dir_(dir_.path() / "data") {
        collector_ = std::make_unique<ServiceProcess>(
            "log_collector", std::vector<std::string>{"--data-dir", data_dir_.string()},
            dir_.path());
        for (const auto operation : kAllOperations) {
            workers_.push_back(std::make_unique<ServiceProcess>(
                "worker",
                std::vector<std::string>{"--operation", std::string(operation_name(operation)),
                                         "--log-collector-url", collector_->url()},
                dir_.path()));
        }
        std::vector<std::string> urls;
        for (const auto operation : kAllOperations) {
            urls.push_back("--" + std::string(operation_name(operation)) + "-worker-url");
            urls.push_back(worker(operation).url());
        }
        submitter_args.insert(submitter_args.end(), urls.begin(), urls.end());
        submitter_ = std::make_unique<ServiceProcess>("job_submitter", submitter_args, dir_.path());
        help_ = std::make_unique<ServiceProcess>("help_page", urls, dir_.path());
    }

    ServiceProcess& worker(Operation operation) {
        return *workers_[static_cast<std::size_t>(operation)];
    }
    ServiceProcess& submitter() { return *submitter_; }
    ServiceProcess& help() { return *help_; }
    std::unique_ptr<ServiceProcess>& collector() { return collector_; }
    const std::filesystem::path& dir() const { return dir_.path(); }
    const std::filesystem::path& data_dir() const { return data_dir_; }

    ClientResponse submit(const json& body) {
        return post(submitter_->url() + "/submit", body.dump());
    }

    /// Whether log_collector has acknowledged every record the workers made: a worker keeps a
    /// record in its queue until then.
    bool logs_settled() {
        return std::all_of(workers_.begin(), workers_.end(), [](const auto& worker) {
            return get(worker->url() + "/metrics").body.find("\ncalcmesh_log_queue_depth 0\n") !=
                   std::string::npos;
        });
    }

    /// Every record log_collector holds.
    json logs() {
        const auto response = get(collector_->url() + "/logs");
        EXPECT_EQ(response.status, 200u);
        return json::parse(response.body);
    }

  private:
    TempDir dir_;
    std::filesystem::path data_dir_;
    std::unique_ptr<ServiceProcess> collector_;
    std::vector<std::unique_ptr<ServiceProcess>> workers_;
    std::unique_ptr<ServiceProcess> submitter_;
    std::unique_ptr<ServiceProcess> help_;
};

/// Most tests share one system, started once.
class ServicesTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { system_ = new System("services"); }
    static void TearDownTestSuite() {
        delete system_;
        system_ = nullptr;
    }
    static System* system_;
};
System* ServicesTest::system_ = nullptr;

bool has_job(const json& records, const std::string& job_id) {
    for (const auto& record : records) {
        if (record["job_id"] == job_id) {
            return true;
        }
    }
    return false;
}

TEST_F(ServicesTest, ComputesEveryOperationOverHttpAndLogsIt) {
    struct Case {
        std::string operation;
        std::int64_t a, b, result;
        std::optional<std::int64_t> remainder;
    };
    const std::vector<Case> cases = {{"addition", 40, 2, 42, {}},
                                     {"subtraction", 50, 8, 42, {}},
                                     {"multiplication", 6, 7, 42, {}},
                                     {"division", 7, 2, 3, 1},
                                     {"division", -7, 2, -3, -1}};
    std::vector<std::string> job_ids;
    for (const auto& c : cases) {
        const auto response = system_->submit(
            {{"operation", c.operation}, {"a", c.a}, {"b", c.b}, {"mechanism", "http"}});
        ASSERT_EQ(response.status, 200u) << response.body;
        const auto job = json::parse(response.body);
        EXPECT_EQ(job["status"], "completed");
        EXPECT_EQ(job["operation"], c.operation);
        EXPECT_EQ(job["result"], c.result);
        EXPECT_EQ(job["mechanism"], "http");
        EXPECT_EQ(job["worker"], c.operation + "_worker");
        EXPECT_EQ(job["worker_cluster"], "local");
        EXPECT_GT(job["elapsed_ms"].get<double>(), 0.0);
        if (c.remainder) {
            EXPECT_EQ(job["remainder"], *c.remainder);
        } else {
            EXPECT_FALSE(job.contains("remainder"));
        }
        job_ids.push_back(job["job_id"]);
    }
    // Each worker's record reaches log_collector shortly after the answer.
    ASSERT_TRUE(eventually([&] {
        const auto records = system_->logs();
        return std::all_of(job_ids.begin(), job_ids.end(),
                           [&](const auto& id) { return has_job(records, id); });
    }));
    const auto one =
        json::parse(get(system_->collector()->url() + "/logs?job_id=" + job_ids[3]).body);
    ASSERT_EQ(one.size(), 1u);
    EXPECT_EQ(one[0]["result"], 3);
    EXPECT_EQ(one[0]["remainder"], 1);
    EXPECT_EQ(one[0]["mechanism"], "http");
    EXPECT_EQ(one[0]["worker"], "division_worker");
}

TEST_F(ServicesTest, AcceptsFormsAndShortNames) {
    const auto response = post(system_->submitter().url() + "/submit", "operation=mul&a=-6&b=7",
                               "application/x-www-form-urlencoded");
    ASSERT_EQ(response.status, 200u) << response.body;
    EXPECT_EQ(json::parse(response.body)["result"], -42);
}

TEST_F(ServicesTest, KeepsJobsForLookup) {
    const auto submitted = json::parse(
        system_->submit({{"operation", "add"}, {"a", 1}, {"b", 2}, {"mechanism", "http"}}).body);
    const auto found =
        get(system_->submitter().url() + "/jobs/" + submitted["job_id"].get<std::string>());
    ASSERT_EQ(found.status, 200u);
    EXPECT_EQ(json::parse(found.body), submitted);
    EXPECT_EQ(get(system_->submitter().url() + "/jobs/j-unknown").status, 404u);
}

TEST_F(ServicesTest, AnswersWaitFalseWithAJobToPoll) {
    const auto response = system_->submit(
        {{"operation", "subtraction"}, {"a", 5}, {"b", 7}, {"mechanism", "http"}, {"wait", false}});
    ASSERT_EQ(response.status, 202u) << response.body;
    const auto job_id = json::parse(response.body)["job_id"].get<std::string>();
    json job;
    ASSERT_TRUE(eventually([&] {
        job = json::parse(get(system_->submitter().url() + "/jobs/" + job_id).body);
        return job["status"] == "completed";
    }));
    EXPECT_EQ(job["result"], -2);
}

TEST_F(ServicesTest, RejectsBadInputWithoutSideEffects) {
    struct Case {
        std::string name;
        std::string body;
        std::string content_type;
        unsigned status;
        std::string code;
        std::string field;
    };
    const std::string big(70 * 1024, 'x');
    const std::vector<Case> cases = {
        {"malformed json", "{\"operation\":", "application/json", 400, "invalid_json", ""},
        {"not an object", "[1,2]", "application/json", 400, "invalid_json", ""},
        {"wrong content type", "operation=add", "text/plain", 415, "unsupported_media_type", ""},
        {"missing field", R"({"operation":"add","a":1,"mechanism":"http"})", "application/json",
         400, "missing_field", "b"},
        {"mistyped field", R"({"operation":"add","a":"1","b":2,"mechanism":"http"})",
         "application/json", 400, "invalid_field", "a"},
        {"not an integer", R"({"operation":"add","a":1.5,"b":2,"mechanism":"http"})",
         "application/json", 400, "invalid_field", "a"},
        {"beyond 64 bits",
         R"({"operation":"add","a":1,"b":18446744073709551616,"mechanism":"http"})",
         "application/json", 400, "out_of_range", "b"},
        {"unknown operation", R"({"operation":"power","a":1,"b":2,"mechanism":"http"})",
         "application/json", 400, "unknown_operation", "operation"},
        {"unknown mechanism", R"({"operation":"add","a":1,"b":2,"mechanism":"grpc"})",
         "application/json", 400, "unknown_mechanism", "mechanism"},
        {"unknown field", R"({"operation":"add","a":1,"b":2,"mechanism":"http","c":3})",
         "application/json", 400, "unknown_field", "c"},
        {"body over 64 KiB", R"({"operation":"add","a":1,"b":2,"pad":")" + big + "\"}",
         "application/json", 413, "payload_too_large", ""},
    };
    // Records of earlier tests may still be on their way.
    ASSERT_TRUE(eventually([&] { return system_->logs_settled(); }));
    const auto records_before = system_->logs().size();
    for (const auto& c : cases) {
        const auto response = post(system_->submitter().url() + "/submit", c.body, c.content_type);
        EXPECT_EQ(response.status, c.status) << c.name << ": " << response.body;
        const auto body = json::parse(response.body, nullptr, false);
        ASSERT_TRUE(body.is_object()) << c.name;
        EXPECT_EQ(body["error"]["code"], c.code) << c.name;
        EXPECT_FALSE(body["error"]["message"].get<std::string>().empty()) << c.name;
        if (!c.field.empty()) {
            EXPECT_EQ(body["error"]["field"], c.field) << c.name;
        }
    }
    EXPECT_EQ(system_->logs().size(), records_before);
}

TEST_F(ServicesTest, ReportsOverflowAndDivisionByZeroAsFailedJobs) {
    for (const auto& [body, code] :
         {std::pair{
              json{{"operation", "addition"}, {"a", INT64_MAX}, {"b", 1}, {"mechanism", "http"}},
              "overflow"},
          std::pair{json{{"operation", "multiplication"},
                         {"a", INT64_MIN},
                         {"b", -1},
                         {"mechanism", "http"}},
                    "overflow"},
          std::pair{
              json{{"operation", "division"}, {"a", INT64_MIN}, {"b", -1}, {"mechanism", "http"}},
              "overflow"},
          std::pair{json{{"operation", "division"}, {"a", 7}, {"b", 0}, {"mechanism", "http"}},
                    "division_by_zero"}}) {
        const auto response = system_->submit(body);
        EXPECT_EQ(response.status, 400u) << response.body;
        const auto job = json::parse(response.body);
        EXPECT_EQ(job["error"]["code"], code);
        EXPECT_EQ(job["status"], "failed");
        EXPECT_FALSE(job.contains("result"));
        // The failure is recorded as a failure, never as a result.
        const auto id = job["job_id"].get<std::string>();
        ASSERT_TRUE(eventually([&] {
            return json::parse(get(system_->collector()->url() + "/logs?job_id=" + id).body)
                       .size() == 1;
        }));
        const auto record =
            json::parse(get(system_->collector()->url() + "/logs?job_id=" + id).body)[0];
        EXPECT_EQ(record["error"]["code"], code);
        EXPECT_FALSE(record.contains("result"));
    }
}

TEST_F(ServicesTest, AnswersUnknownRoutesAndMethods) {
    EXPECT_EQ(get(system_->submitter().url() + "/nothing-here").status, 404u);
    const auto wrong_method = get(system_->submitter().url() + "/submit");
    EXPECT_EQ(wrong_method.status, 405u);
    EXPECT_EQ(json::parse(wrong_method.body)["error"]["code"], "method_not_allowed");
    EXPECT_EQ(post(system_->worker(Operation::addition).url() + "/compute?a=1&b=2", "").status,
              405u);
}

TEST_F(ServicesTest, WorkerComputesAndDescribesItself) {
    auto& worker = system_->worker(Operation::division);
    const auto ok = get(worker.url() + "/compute?a=-9&b=4&job_id=j-direct-1");
    ASSERT_EQ(ok.status, 200u);
    const auto result = json::parse(ok.body);
    EXPECT_EQ(result["job_id"], "j-direct-1");
    EXPECT_EQ(result["result"], -2);
    EXPECT_EQ(result["remainder"], -1);
    EXPECT_EQ(result["worker"], "division_worker");
    EXPECT_TRUE(result.contains("cluster"));
    EXPECT_TRUE(result.contains("node"));

    for (const auto& [query, code] :
         {std::pair{"a=1", "missing_field"}, std::pair{"a=1&b=two", "invalid_field"},
          std::pair{"a=1&b=99999999999999999999", "out_of_range"},
          std::pair{"a=1&b=0", "division_by_zero"},
          std::pair{"a=1&b=2&job_id=bad%20id", "invalid_field"},
          std::pair{"a=1&b=2&x=3", "unknown_field"}}) {
        const auto response = get(worker.url() + "/compute?" + query);
        EXPECT_EQ(response.status, 400u) << query;
        EXPECT_EQ(json::parse(response.body)["error"]["code"], code) << query;
    }
    const auto about = get(worker.url() + "/about");
    EXPECT_EQ(about.status, 200u);
    EXPECT_NE(about.content_type.find("text/html"), std::string::npos);
    EXPECT_NE(about.body.find("division_worker"), std::string::npos);
    EXPECT_NE(about.body.find("/compute?a=7&amp;b=2"), std::string::npos);
}

TEST_F(ServicesTest, HelpPageShowsEveryWorker) {
    const auto page = get(system_->help().url() + "/");
    ASSERT_EQ(page.status, 200u);
    for (const auto operation : kAllOperations) {
        EXPECT_NE(page.body.find("id=\"" + worker_name(operation) + "\""), std::string::npos);
    }
    EXPECT_EQ(page.body.find("unavailable</strong>"), std::string::npos);
}

TEST_F(ServicesTest, SubmitterServesItsForm) {
    const auto page = get(system_->submitter().url() + "/");
    EXPECT_EQ(page.status, 200u);
    EXPECT_NE(page.body.find("<form"), std::string::npos);
    EXPECT_NE(page.body.find("/submit"), std::string::npos);
}

TEST_F(ServicesTest, EveryServiceHasHealthReadinessAndMetrics) {
    std::vector<ServiceProcess*> services = {&system_->submitter(), &system_->help(),
                                             system_->collector().get()};
    for (const auto operation : kAllOperations) {
        services.push_back(&system_->worker(operation));
    }
    for (auto* service : services) {
        EXPECT_EQ(get(service->url() + "/healthz").status, 200u);
        const auto ready = get(service->url() + "/readyz");
        EXPECT_EQ(ready.status, 200u);
        EXPECT_EQ(json::parse(ready.body)["status"], "ready");
        const auto metrics = get(service->url() + "/metrics");
        EXPECT_EQ(metrics.status, 200u);
        EXPECT_NE(metrics.body.find("# TYPE calcmesh_http_requests_total counter"),
                  std::string::npos);
        EXPECT_NE(
            metrics.body.find(
                "calcmesh_http_request_duration_seconds_bucket{le=\"+Inf\",route=\"/readyz\"}"),
            std::string::npos);
    }
    const auto worker_metrics = get(system_->worker(Operation::addition).url() + "/metrics").body;
    EXPECT_NE(worker_metrics.find("calcmesh_log_records_dropped_total 0"), std::string::npos);
}

TEST_F(ServicesTest, ServesSeveralRequestsOnOneConnection) {
    net::io_context context;
    beast::tcp_stream stream(context);
    stream.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), system_->submitter().port()));
    for (int i = 0; i < 3; ++i) {
        http::request<http::string_body> request{http::verb::post, "/submit", 11};
        request.set(http::field::host, "localhost");
        request.set(http::field::content_type, "application/json");
        request.body() =
            json{{"operation", "add"}, {"a", i}, {"b", 1}, {"mechanism", "http"}}.dump();
        request.prepare_payload();
        http::write(stream, request);
        beast::flat_buffer buffer;
        http::response<http::string_body> response;
        http::read(stream, buffer, response);
        EXPECT_EQ(response.result_int(), 200u);
        EXPECT_TRUE(response.keep_alive());
        EXPECT_EQ(json::parse(response.body())["result"], i + 1);
    }
}

TEST_F(ServicesTest, AnswersMalformedHttpWith400) {
    net::io_context context;
    tcp::socket socket(context);
    socket.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), system_->submitter().port()));
    net::write(socket, net::buffer(std::string("THIS IS NOT HTTP\r\n\r\n")));
    std::string reply;
    boost::system::error_code ec;
    net::read(socket, net::dynamic_buffer(reply), ec);  // until the server closes
    EXPECT_EQ(reply.rfind("HTTP/1.1 400", 0), 0u) << reply;
}

TEST_F(ServicesTest, LogsRejectBadQueries) {
    const auto url = system_->collector()->url();
    EXPECT_EQ(get(url + "/logs?limit=0").status, 400u);
    EXPECT_EQ(get(url + "/logs?limit=ten").status, 400u);
    EXPECT_EQ(get(url + "/logs?operation=power").status, 400u);
    EXPECT_EQ(get(url + "/logs?cursor=1").status, 400u);
    EXPECT_EQ(get(url + "/logs?colour=red").status, 400u);
    EXPECT_EQ(post(url + "/save_log", R"({"job_id":"x"})").status, 400u);
    EXPECT_EQ(post(url + "/save_log", "[]").status, 400u);
    EXPECT_EQ(post(url + "/save_log", "job", "text/plain").status, 415u);
}

/// GET with the response headers, which the helpers above leave out.
http::response<http::string_body> get_with_headers(unsigned short port, const std::string& target) {
    net::io_context context;
    beast::tcp_stream stream(context);
    stream.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    http::request<http::empty_body> request{http::verb::get, target, 11};
    request.set(http::field::host, "localhost");
    http::write(stream, request);
    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(stream, buffer, response);
    return response;
}

TEST_F(ServicesTest, LogsPageWithACursorAndServeText) {
    const auto url = system_->collector()->url();
    std::vector<std::string> job_ids;
    job_ids.reserve(3);
    for (int i = 0; i < 3; ++i) {
        job_ids.push_back(json::parse(
            system_->submit({{"operation", "add"}, {"a", i}, {"b", 0}, {"mechanism", "http"}})
                .body)["job_id"]);
    }
    // The store is shared with the other tests: wait for this test's own records, which each
    // loop of the worker sends on its own.
    ASSERT_TRUE(eventually([&] {
        const auto logs = system_->logs();
        return std::all_of(job_ids.begin(), job_ids.end(),
                           [&](const std::string& id) { return has_job(logs, id); });
    }));
    const auto all = system_->logs();
    const auto first = get_with_headers(system_->collector()->port(), "/logs?limit=2");
    const auto page = json::parse(first.body());
    ASSERT_EQ(page.size(), 2u);
    EXPECT_EQ(page[0], all[0]);
    EXPECT_EQ(page[1], all[1]);
    const std::string cursor(first["X-Next-Cursor"]);
    ASSERT_FALSE(cursor.empty());
    EXPECT_NE(std::string(first[http::field::link]).find("cursor=" + cursor), std::string::npos);
    const auto rest = json::parse(get(url + "/logs?cursor=" + cursor).body);
    ASSERT_EQ(rest.size(), all.size() - 2);
    EXPECT_EQ(rest[0], all[2]);

    const auto text = get(url + "/logs?format=text");
    EXPECT_EQ(text.content_type.rfind("text/plain", 0), 0u);
    EXPECT_EQ(std::count(text.body.begin(), text.body.end(), '\n'), static_cast<long>(all.size()));
}

TEST(ServicesOutage, SubmitterNamesAStoppedWorkerAndHelpPageStillRenders) {
    System system("worker-down");
    auto& worker = system.worker(Operation::multiplication);
    EXPECT_EQ(worker.stop(), 0);
    const auto response =
        system.submit({{"operation", "multiplication"}, {"a", 6}, {"b", 7}, {"mechanism", "http"}});
    EXPECT_TRUE(response.status == 502u || response.status == 503u) << response.status;
    const auto body = json::parse(response.body);
    EXPECT_EQ(body["error"]["code"], "upstream_unavailable");
    EXPECT_NE(body["error"]["message"].get<std::string>().find("multiplication_worker"),
              std::string::npos);
    EXPECT_EQ(body["status"], "failed");
    // The other workers still serve.
    EXPECT_EQ(system.submit({{"operation", "addition"}, {"a", 6}, {"b", 7}, {"mechanism", "http"}})
                  .status,
              200u);

    const auto page = get(system.help().url() + "/");
    EXPECT_EQ(page.status, 200u);
    EXPECT_NE(page.body.find("id=\"multiplication_worker\""), std::string::npos);
    EXPECT_NE(page.body.find("unavailable</strong>"), std::string::npos);
    EXPECT_NE(page.body.find("id=\"division_worker\""), std::string::npos);
}

TEST(ServicesOutage, SubmitterTimesOutOnASlowWorkerAndDrainsOnSigterm) {
    System system("worker-slow", {"--worker-timeout-ms", "500"});
    auto& worker = system.worker(Operation::division);
    // A stopped process still has its socket: connections are accepted, never answered.
    ASSERT_EQ(::kill(worker.pid(), SIGSTOP), 0);
    const auto started = std::chrono::steady_clock::now();
    const auto response =
        system.submit({{"operation", "division"}, {"a", 6}, {"b", 3}, {"mechanism", "http"}});
    EXPECT_EQ(response.status, 504u) << response.body;
    EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(450));
    const auto body = json::parse(response.body);
    EXPECT_EQ(body["error"]["code"], "upstream_timeout");
    EXPECT_NE(body["error"]["message"].get<std::string>().find("division_worker"),
              std::string::npos);

    // An in-flight request finishes before the submitter exits on SIGTERM.
    std::thread in_flight([&] {
        const auto late =
            system.submit({{"operation", "division"}, {"a", 1}, {"b", 1}, {"mechanism", "http"}});
        EXPECT_EQ(late.status, 504u);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_EQ(system.submitter().stop(), 0);
    in_flight.join();
    ::kill(worker.pid(), SIGCONT);
}

TEST(ServicesOutage, SubmitterRefusesJobsPastMaxInFlight) {
    System system("overloaded", {"--max-in-flight", "1", "--worker-timeout-ms", "1500"});
    auto& worker = system.worker(Operation::division);
    ASSERT_EQ(::kill(worker.pid(), SIGSTOP), 0);
    std::thread stuck([&] {
        const auto response =
            system.submit({{"operation", "division"}, {"a", 6}, {"b", 3}, {"mechanism", "http"}});
        EXPECT_EQ(response.status, 504u) << response.body;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    // One job runs: the next is refused at once.
    const auto refused =
        system.submit({{"operation", "addition"}, {"a", 1}, {"b", 2}, {"mechanism", "http"}});
    EXPECT_EQ(refused.status, 503u) << refused.body;
    EXPECT_EQ(json::parse(refused.body)["error"]["code"], "overloaded");
    EXPECT_NE(get(system.submitter().url() + "/metrics").body.find("calcmesh_jobs_refused_total 1"),
              std::string::npos);
    stuck.join();
    ::kill(worker.pid(), SIGCONT);
    // Once the running job has ended, jobs are taken again.
    const auto taken =
        system.submit({{"operation", "addition"}, {"a", 1}, {"b", 2}, {"mechanism", "http"}});
    EXPECT_EQ(taken.status, 200u) << taken.body;
}

TEST(ServicesOutage, WorkerRecordsSurviveALogCollectorOutage) {
    System system("collector-down");
    auto& collector = system.collector();
    const auto port = collector->port();
    const auto first =
        json::parse(system.submit({{"operation", "add"}, {"a", 1}, {"b", 1}, {"mechanism", "http"}})
                        .body)["job_id"];
    ASSERT_TRUE(eventually([&] { return has_job(system.logs(), first); }));
    EXPECT_EQ(collector->stop(), 0);

    // Enough records that they come back in several batches, each under the body limit.
    std::vector<std::string> during;
    for (int i = 0; i < 400; ++i) {
        const auto response =
            system.submit({{"operation", "addition"}, {"a", i}, {"b", 2}, {"mechanism", "http"}});
        ASSERT_EQ(response.status, 200u) << "jobs do not wait for logging";
        during.push_back(json::parse(response.body)["job_id"]);
    }
    collector = std::make_unique<ServiceProcess>(
        "log_collector", std::vector<std::string>{"--data-dir", system.data_dir().string()},
        system.dir(), port);
    ASSERT_TRUE(eventually(
        [&] {
            const auto records = system.logs();
            return std::all_of(during.begin(), during.end(),
                               [&](const auto& id) { return has_job(records, id); });
        },
        std::chrono::seconds(20)));
    const auto records = system.logs();
    EXPECT_TRUE(has_job(records, first)) << "a record acknowledged before the outage is kept";
    EXPECT_EQ(records.size(), 1 + during.size()) << "each record is stored once";
}

/// One request, as it goes on the wire, that asks the service to close the connection after
/// its answer.
std::string raw_request(const std::string& request_line, const std::string& content_type = "",
                        const std::string& body = "") {
    std::string text = request_line + "\r\nHost: x\r\nConnection: close\r\n";
    if (!content_type.empty()) {
        text += "Content-Type: " + content_type + "\r\n";
    }
    return text + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

/// Sends `request` on a fresh connection and returns what the service sent until it closed
/// the connection.
std::string exchange(unsigned short port, const std::string& request) {
    net::io_context context;
    tcp::socket socket(context);
    socket.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    net::write(socket, net::buffer(request));
    std::string reply;
    boost::system::error_code ec;
    net::read(socket, net::dynamic_buffer(reply), ec);
    return reply;
}

TEST(ServicesShutdown, RequestsWithBytesThatAreNotUtf8AreAnsweredAndDoNotHoldTheDrain) {
    // Valid requests with a byte flipped or inserted, as a fuzzer makes them: the error answers
    // quote the path or a value. Such a request used to end its connection unanswered and to
    // count as in flight for good, so that SIGTERM waited out the whole shutdown timeout.
    System system("not-utf8");
    auto& worker = system.worker(Operation::addition);
    struct Case {
        std::string what;
        ServiceProcess& service;
        std::string request;
        std::string status;
    };
    const std::vector<Case> cases = {
        {"job_submitter, 0xf5 in the path", system.submitter(),
         raw_request("POST /s\xf5"
                     "bmit HTTP/1.1",
                     "application/json", R"({"operation":"add","a":1,"b":2})"),
         "404"},
        {"job_submitter, %FF in a form field", system.submitter(),
         raw_request("POST /submit HTTP/1.1", "application/x-www-form-urlencoded",
                     "operation=%FF&a=1&b=2"),
         "400"},
        {"help_page, 0xff in the path", system.help(), raw_request("GET /\xff HTTP/1.1"), "404"},
        {"log_collector, 0xc7 in the path", *system.collector(),
         raw_request("POST /save_lo\xc7"
                     "g HTTP/1.1",
                     "application/json", "[]"),
         "404"},
        {"log_collector, %FF in a query value", *system.collector(),
         raw_request("GET /logs?operation=%FF HTTP/1.1"), "400"},
        {"addition_worker, 0x81 in a query value", worker,
         raw_request("GET /compute?a=7\x81&b=2 HTTP/1.1"), "400"},
        {"addition_worker, 0xad in the path", worker,
         raw_request("GET /\xad"
                     "compute?a=7&b=2 HTTP/1.1"),
         "404"},
    };
    for (const auto& c : cases) {
        const auto reply = exchange(c.service.port(), c.request);
        EXPECT_EQ(reply.rfind("HTTP/1.1 " + c.status, 0), 0u) << c.what << ": " << reply;
    }
    for (auto* service : {&system.submitter(), &system.help(), system.collector().get(), &worker}) {
        const auto started = std::chrono::steady_clock::now();
        EXPECT_EQ(service->stop(), 0);
        const auto took = std::chrono::steady_clock::now() - started;
        const auto output = service->output();
        EXPECT_LT(took, std::chrono::seconds(3)) << "the drain waits for nothing:\n" << output;
        EXPECT_EQ(output.find("event=drain_timeout"), std::string::npos) << output;
    }
}

TEST(ServicesLogCollector, IndexesTheLastRecordsItIsToldAndStillFindsAnOlderJob) {
    TempDir dir("log-index");
    constexpr int kIndexRecords = 65536;  // the smallest index: one block
    ServiceProcess collector("log_collector",
                             {"--data-dir", (dir.path() / "data").string(), "--index-records",
                              std::to_string(kIndexRecords)},
                             dir.path());
    // The old job's two records, then four times the index of other jobs', then its third.
    ASSERT_EQ(
        post(collector.url() + "/save_log", "[" + log_record_line("j-old-r1", "j-old", 1) + "," +
                                                log_record_line("j-old-r2", "j-old", 2) + "]")
            .status,
        201u);
    constexpr int kBatch = 128;  // records of about 300 bytes, under the 64 KiB body limit
    for (int batch = 0; batch < 4 * kIndexRecords / kBatch; ++batch) {
        std::string body = "[";
        for (int i = 0; i < kBatch; ++i) {
            body += (i ? "," : "") +
                    log_record_line("r-" + std::to_string(batch) + "-" + std::to_string(i),
                                    "j-" + std::to_string(batch) + "-" + std::to_string(i), i);
        }
        ASSERT_EQ(post(collector.url() + "/save_log", body + "]").status, 201u);
    }
    ASSERT_EQ(post(collector.url() + "/save_log", log_record_line("j-old-r3", "j-old", 3)).status,
              201u);

    const auto metrics = get(collector.url() + "/metrics").body;
    EXPECT_EQ(metric(metrics, "calcmesh_log_records"), 4 * kIndexRecords + 3);
    const auto indexed = metric(metrics, "calcmesh_log_records_indexed");
    EXPECT_GE(indexed, kIndexRecords) << metrics;
    EXPECT_LE(indexed, 2 * kIndexRecords) << "the index keeps the last records only";

    // The first two are before the index (scanned), the third in it; paged one at a time.
    std::vector<std::int64_t> operands;
    std::string target = "/logs?job_id=j-old&limit=1";
    for (int page = 0; page < 4 && !target.empty(); ++page) {
        const auto response = get_with_headers(collector.port(), target);
        ASSERT_EQ(response.result_int(), 200) << response.body();
        for (const auto& record : json::parse(response.body())) {
            operands.push_back(record["a"]);
        }
        const std::string cursor(response["X-Next-Cursor"]);
        target = cursor.empty() ? "" : "/logs?job_id=j-old&limit=1&cursor=" + cursor;
    }
    EXPECT_EQ(operands, (std::vector<std::int64_t>{1, 2, 3}));
}

TEST(ServicesLogCollector, RefusesAnIndexSmallerThanOneBlockNamingTheOption) {
    TempDir dir("log-index-refused");
    ChildProcess::Options options;
    options.argv = {bin_dir() + "/log_collector", "--data-dir", (dir.path() / "data").string(),
                    "--index-records", "10"};
    const auto result = run_captured(options);
    EXPECT_NE(result.exit_code, 0);
    EXPECT_NE(result.errors.find("--index-records"), std::string::npos) << result.errors;
    EXPECT_FALSE(std::filesystem::exists(dir.path() / "data" / "logs.jsonl"))
        << "a refused configuration creates nothing";
}

TEST(ServicesLogShipping, AFullBatchGoesAtOnceAndAPartialOneAfterTheLinger) {
    TempDir dir("log-batches");
    ServiceProcess collector("log_collector", {"--data-dir", (dir.path() / "data").string()},
                             dir.path());
    // A long linger, so that only a full batch explains records that arrive early. One loop:
    // each loop batches its own records, and the five requests may land on different loops.
    ServiceProcess worker("worker",
                          {"--operation", "addition", "--log-collector-url", collector.url(),
                           "--log-batch-size", "5", "--log-linger-ms", "3000", "--threads", "1"},
                          dir.path());
    const auto stored = [&] {
        const auto response = get(collector.url() + "/logs");
        return json::parse(response.body).size();
    };
    const auto started = std::chrono::steady_clock::now();
    for (int i = 0; i < 5; ++i) {
        ASSERT_EQ(get(worker.url() + "/compute?a=" + std::to_string(i) + "&b=1").status, 200u);
    }
    ASSERT_TRUE(eventually([&] { return stored() == 5; }));
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(3000))
        << "a full batch does not wait for the linger";
    const auto metrics = get(collector.url() + "/metrics").body;
    EXPECT_NE(metrics.find("calcmesh_http_request_duration_seconds_count{route=\"/save_log\"} 1\n"),
              std::string::npos)
        << "the five records came in one request";

    const auto sixth = std::chrono::steady_clock::now();
    ASSERT_EQ(get(worker.url() + "/compute?a=6&b=1").status, 200u);
    ASSERT_TRUE(eventually([&] { return stored() == 6; }, std::chrono::seconds(10)));
    EXPECT_GE(std::chrono::steady_clock::now() - sixth, std::chrono::milliseconds(3000))
        << "a lone record waits for others until its linger is over";
}

}  // namespace
}  // namespace calcmesh::testing
