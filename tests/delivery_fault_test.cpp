// Faults against the real binaries: log_collector killed or stopped under load, a worker
// killed with a replica beside it, the Kafka broker killed, the disk full. Each test asserts
// what survived and prints its figures on a line starting with "FIGURES", e.g.
//   ctest --preset release -R DeliveryFault -V | grep FIGURES

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "calcmesh/arithmetic.hpp"
#include "calcmesh/error.hpp"
#include "calcmesh/job.hpp"
#include "kafka_system.hpp"
#include "service_process.hpp"

namespace calcmesh::testing {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

/// One line of figures for the report.
void print_figures(const std::string& fault, const std::map<std::string, std::string>& figures) {
    std::ostringstream line;
    line << "FIGURES fault=" << fault;
    for (const auto& [name, value] : figures) {
        line << ' ' << name << '=' << value;
    }
    std::cout << line.str() << '\n' << std::flush;
}

unsigned env_or(const char* name, unsigned fallback) {
    const char* value = std::getenv(name);
    return value ? static_cast<unsigned>(std::stoul(value)) : fallback;
}

/// A request that may fail at the transport (the service is down): nullopt then.
std::optional<ClientResponse> try_request(
    http::verb method, const std::string& url, const std::string& body = {},
    std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    auto response =
        blocking_http(method, url, body, body.empty() ? "" : "application/json", timeout);
    if (!response) {
        return std::nullopt;
    }
    return response.value();
}

/// Every record log_collector serves, page after page: in text form a page is the file's
/// lines as they are, so the next page starts where its bytes end.
json all_records(const std::string& collector_url) {
    json records = json::array();
    std::uint64_t cursor = 0;
    for (;;) {
        const auto page =
            get(collector_url + "/logs?format=text&cursor=" + std::to_string(cursor)).body;
        if (page.empty()) {
            return records;
        }
        std::istringstream lines(page);
        for (std::string line; std::getline(lines, line);) {
            records.push_back(json::parse(line));
        }
        cursor += page.size();
    }
}

/// How many times each job id occurs among the records log_collector serves.
std::map<std::string, int> records_per_job(const json& records) {
    std::map<std::string, int> count;
    for (const auto& record : records) {
        ++count[record["job_id"].get<std::string>()];
    }
    return count;
}

/// SIGCONT on scope exit, so that a failed assertion never leaves a stopped process behind.
struct Resume {
    pid_t pid;
    ~Resume() { ::kill(pid, SIGCONT); }
};

/// Asks every thread to stop, then waits for them all. The load threads are jthreads whose
/// loops end on their stop token: a failed assertion that leaves the test early stops and joins
/// them too, as their destructors run, where a std::thread still running would terminate the
/// whole test process and leave its broker and services behind.
void stop_and_join(std::vector<std::jthread>& threads) {
    for (auto& thread : threads) {
        thread.request_stop();
    }
    for (auto& thread : threads) {
        thread.join();
    }
}

TEST(DeliveryFaultCollector, AWorkerRefusesWorkItCouldNotLogAndCatchesUpAfterTheOutage) {
    TempDir dir("fault-backlog");
    auto collector = std::make_unique<ServiceProcess>(
        "log_collector", std::vector<std::string>{"--data-dir", (dir.path() / "data").string()},
        dir.path());
    const auto port = collector->port();
    ServiceProcess worker("worker",
                          {"--operation", "addition", "--log-collector-url", collector->url(),
                           "--log-queue-capacity", "5"},
                          dir.path());
    EXPECT_EQ(collector->stop(), 0);
    for (int i = 0; i < 5; ++i) {
        ASSERT_EQ(get(worker.url() + "/compute?a=" + std::to_string(i) + "&b=1").status, 200u);
    }
    // Five records wait for log_collector: a sixth job would have no room for its record.
    const auto refused = get(worker.url() + "/compute?a=5&b=1");
    EXPECT_EQ(refused.status, 503u) << refused.body;
    EXPECT_EQ(json::parse(refused.body)["error"]["code"], "log_backlog");
    EXPECT_NE(
        run_command("curl -si '" + worker.url() + "/compute?a=5&b=1'").find("Retry-After: 1\r\n"),
        std::string::npos);
    const auto ready = json::parse(get(worker.url() + "/readyz").body);
    EXPECT_EQ(ready["dependencies"]["log_collector"]["accepting_jobs"], false);
    EXPECT_EQ(ready["dependencies"]["log_collector"]["queued_records"], 5);

    const auto restarted = Clock::now();
    collector = std::make_unique<ServiceProcess>(
        "log_collector", std::vector<std::string>{"--data-dir", (dir.path() / "data").string()},
        dir.path(), port);
    ASSERT_TRUE(eventually([&] { return all_records(collector->url()).size() == 5; }));
    ASSERT_TRUE(eventually([&] { return get(worker.url() + "/compute?a=6&b=1").status == 200; }));
    const auto metrics = get(worker.url() + "/metrics").body;
    EXPECT_EQ(metric(metrics, "calcmesh_jobs_refused_total"), 2);
    EXPECT_EQ(metric(metrics, "calcmesh_log_records_dropped_total"), 0);
    print_figures("worker_backlog", {{"jobs_answered", "6"},
                                     {"jobs_refused", "2"},
                                     {"records_lost", "0"},
                                     {"recovery_s", std::to_string(seconds_since(restarted))}});
}

TEST(DeliveryFaultCollector,
     KilledRepeatedlyUnderConcurrentWritersKeepsEveryAcknowledgedRecordOnce) {
    TempDir dir("fault-collector-kill");
    const std::vector<std::string> args = {"--data-dir", (dir.path() / "data").string()};
    auto collector = std::make_unique<ServiceProcess>("log_collector", args, dir.path());
    const auto url = collector->url();
    constexpr int kWriters = 32;
    constexpr int kRecordsPerBatch = 5;
    constexpr int kKills = 6;
    const auto deadline = Clock::now() + std::chrono::seconds(120);

    std::mutex mutex;
    std::set<std::string> acknowledged;
    std::atomic<int> writers_left{kWriters};
    std::atomic<int> retries{0};
    // Threads that stop and join however the test ends, a failed assertion included.
    std::vector<std::jthread> writers;  // until the last kill
    writers.reserve(kWriters);
    for (int w = 0; w < kWriters; ++w) {
        writers.emplace_back([&, w](const std::stop_token& stop) {
            for (int b = 0; !stop.stop_requested() && Clock::now() < deadline; ++b) {
                std::vector<std::string> ids;
                std::string body = "[";
                for (int i = 0; i < kRecordsPerBatch; ++i) {
                    ids.push_back("w" + std::to_string(w) + "-" + std::to_string(b) + "-" +
                                  std::to_string(i));
                    body += (i ? "," : "") +
                            log_record_line(ids.back(), "j-" + ids.back(), w * 1000 + b);
                }
                body += "]";
                // The same batch again until it is acknowledged, as a worker does.
                for (;;) {
                    const auto response = try_request(http::verb::post, url + "/save_log", body);
                    if (response && response->status == 201) {
                        break;
                    }
                    ++retries;
                    if (Clock::now() > deadline) {
                        return;
                    }
                    std::this_thread::sleep_for(std::chrono::milliseconds(20));
                }
                {
                    std::lock_guard lock(mutex);
                    acknowledged.insert(ids.begin(), ids.end());
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
            --writers_left;
        });
    }
    // A reader all along: every line it is served must be a whole record.
    std::atomic<int> reads{0};
    std::atomic<int> torn_lines_served{0};
    std::jthread reader([&](const std::stop_token& stop) {
        while (!stop.stop_requested()) {
            const auto response = try_request(http::verb::get, url + "/logs?format=text");
            if (!response || response->status != 200) {
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
                continue;
            }
            ++reads;
            std::istringstream lines(response->body);
            for (std::string line; std::getline(lines, line);) {
                const auto record = json::parse(line, nullptr, false);
                if (!record.is_object() || !record.contains("record_id")) {
                    ++torn_lines_served;
                }
            }
            if (!response->body.empty() && response->body.back() != '\n') {
                ++torn_lines_served;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    });

    double longest_restart_s = 0;
    int torn_tails_cut = 0;
    for (int kill = 0; kill < kKills; ++kill) {
        std::this_thread::sleep_for(std::chrono::milliseconds(400));
        ASSERT_EQ(::kill(collector->pid(), SIGKILL), 0);
        collector->stop();  // reaps it
        const auto restarting = Clock::now();
        collector =
            std::make_unique<ServiceProcess>("log_collector", args, dir.path(), collector->port());
        longest_restart_s = std::max(longest_restart_s, seconds_since(restarting));
        if (collector->output().find("torn_record_removed") != std::string::npos) {
            ++torn_tails_cut;
        }
    }
    stop_and_join(writers);
    // Once more after the last write: what was acknowledged survives a crash.
    ASSERT_EQ(::kill(collector->pid(), SIGKILL), 0);
    collector->stop();
    collector =
        std::make_unique<ServiceProcess>("log_collector", args, dir.path(), collector->port());
    reader.request_stop();
    reader.join();

    ASSERT_EQ(writers_left, 0) << "every writer got its batches acknowledged in time";
    const auto records = all_records(url);
    std::map<std::string, int> stored;
    for (const auto& record : records) {
        ++stored[record["record_id"].get<std::string>()];
    }
    int lost = 0;
    int duplicated = 0;
    for (const auto& id : acknowledged) {
        lost += stored[id] == 0;
        duplicated += stored[id] > 1;
    }
    EXPECT_GT(acknowledged.size(), 0u);
    EXPECT_EQ(lost, 0);
    EXPECT_EQ(duplicated, 0);
    EXPECT_EQ(records.size(), acknowledged.size()) << "nothing but the acknowledged records";
    EXPECT_EQ(torn_lines_served, 0);
    EXPECT_GT(reads, 0);
    print_figures("collector_kill9",
                  {{"writers", std::to_string(kWriters)},
                   {"kills", std::to_string(kKills + 1)},
                   {"records_acknowledged", std::to_string(acknowledged.size())},
                   {"records_lost", std::to_string(lost)},
                   {"records_duplicated", std::to_string(duplicated)},
                   {"requests_retried", std::to_string(retries.load())},
                   {"torn_tails_cut_at_restart", std::to_string(torn_tails_cut)},
                   {"reads", std::to_string(reads.load())},
                   {"torn_lines_served", std::to_string(torn_lines_served.load())},
                   {"longest_restart_s", std::to_string(longest_restart_s)}});
}

TEST(DeliveryFaultCollector, StoppedUnderLoadLosesNoRecordOfACompletedJob) {
    // make test stops log_collector for 5 s with a small log queue, so that the queue fills;
    // the longer run (docs/fault-tests.md) sets 30 s and the default capacity.
    const auto outage = std::chrono::seconds(env_or("CALCMESH_FAULT_OUTAGE_SECONDS", 5));
    const auto capacity = std::to_string(env_or("CALCMESH_FAULT_LOG_QUEUE_CAPACITY", 1000));
    // Room for every job of the run in job_submitter's table, so that each can be looked up.
    KafkaSystem system("fault-collector-stop", shared_bootstrap(), {Operation::addition},
                       {"--jobs-capacity", "1000000"}, {"--log-queue-capacity", capacity});
    const auto submit_url = system.submitter()->url() + "/submit";
    const auto collector_pid = system.collector()->pid();

    std::mutex mutex;
    std::vector<std::string> completed_http;
    std::vector<std::string> kafka_jobs;
    std::atomic<int> refused{0};
    std::atomic<int> other_failures{0};
    std::optional<Clock::time_point> resumed_at;
    std::optional<double> first_answer_after_resume_s;
    constexpr int kHttpClients = 8;
    std::vector<std::jthread> clients;
    clients.reserve(kHttpClients);
    for (int c = 0; c < kHttpClients; ++c) {
        clients.emplace_back([&, c](const std::stop_token& stop) {
            for (int i = 0; !stop.stop_requested(); ++i) {
                const auto body = json{
                    {"operation", "addition"},
                    {"a", c * 1'000'000 + i},
                    {"b", 1},
                    {"mechanism",
                     "http"}}.dump();
                const auto response = try_request(http::verb::post, submit_url, body);
                if (response && response->status == 200) {
                    std::lock_guard lock(mutex);
                    completed_http.push_back(json::parse(response->body)["job_id"]);
                    if (resumed_at && !first_answer_after_resume_s) {
                        first_answer_after_resume_s = seconds_since(*resumed_at);
                    }
                } else if (response && response->status == 503 &&
                           read_error_body(response->body).value_or(ErrorBody{}).code ==
                               "log_backlog") {
                    ++refused;  // the worker's 503 log_backlog, passed on by job_submitter
                    std::this_thread::sleep_for(std::chrono::milliseconds(10));
                } else {
                    ++other_failures;
                }
            }
        });
    }
    clients.emplace_back([&](const std::stop_token& stop) {
        for (int i = 0; !stop.stop_requested(); ++i) {
            const auto response = try_request(http::verb::post, submit_url,
                                              json{{"operation", "addition"},
                                                   {"a", i},
                                                   {"b", 2},
                                                   {"mechanism", "kafka"},
                                                   {"wait", false}}
                                                  .dump());
            if (response && response->status == 202) {
                std::lock_guard lock(mutex);
                kafka_jobs.push_back(json::parse(response->body)["job_id"]);
            } else {
                ++other_failures;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    });

    const auto started = Clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(1));
    ASSERT_EQ(::kill(collector_pid, SIGSTOP), 0);
    {
        Resume resume{collector_pid};
        std::this_thread::sleep_for(outage);
        std::lock_guard lock(mutex);
        resumed_at = Clock::now();
    }
    std::this_thread::sleep_for(std::chrono::seconds(3));
    stop_and_join(clients);
    const double load_s = seconds_since(started);

    // Kafka jobs waited in the broker while consumption was paused; they complete now.
    ASSERT_TRUE(eventually(
        [&] {
            return std::all_of(kafka_jobs.begin(), kafka_jobs.end(), [&](const auto& id) {
                return system.job(id)["status"] == "completed";
            });
        },
        std::chrono::seconds(60)));
    const auto expected = completed_http.size() + kafka_jobs.size();
    ASSERT_TRUE(
        eventually([&] { return all_records(system.collector()->url()).size() >= expected; },
                   std::chrono::seconds(30)));
    const auto per_job = records_per_job(all_records(system.collector()->url()));
    int missing = 0;
    int duplicated = 0;
    for (const auto* ids : {&completed_http, &kafka_jobs}) {
        for (const auto& id : *ids) {
            const auto it = per_job.find(id);
            missing += it == per_job.end();
            duplicated += it != per_job.end() && it->second > 1;
        }
    }
    EXPECT_EQ(missing, 0) << "every completed job has its record";
    EXPECT_EQ(duplicated, 0);
    EXPECT_GT(refused, 0) << "the worker refused work once its log queue was full";
    EXPECT_EQ(other_failures, 0);
    ASSERT_TRUE(first_answer_after_resume_s.has_value());
    const auto worker_metrics = get(system.worker(Operation::addition)->url() + "/metrics").body;
    EXPECT_EQ(metric(worker_metrics, "calcmesh_log_records_dropped_total"), 0);
    print_figures(
        "collector_sigstop",
        {{"outage_s", std::to_string(outage.count())},
         {"log_queue_capacity", capacity},
         {"http_jobs_completed", std::to_string(completed_http.size())},
         {"http_jobs_refused_log_backlog", std::to_string(refused.load())},
         {"kafka_jobs_completed", std::to_string(kafka_jobs.size())},
         {"jobs_per_s", std::to_string(static_cast<double>(expected) / load_s)},
         {"records_missing", std::to_string(missing)},
         {"records_duplicated", std::to_string(duplicated)},
         {"first_http_answer_after_resume_s", std::to_string(*first_answer_after_resume_s)}});
}

TEST(DeliveryFaultWorker, KilledMidStreamWithAReplicaEveryKafkaJobAnsweredAndLoggedOnce) {
    // A deadline no job reaches: every result after the first is then a duplicate.
    KafkaSystem system("fault-worker-kill", shared_bootstrap(), {Operation::addition},
                       {"--kafka-timeout-ms", "120000"});
    auto& replica = system.start_replica(Operation::addition);
    constexpr int kJobs = 600;
    std::vector<std::string> ids;
    Clock::time_point killed_at;
    for (int i = 0; i < kJobs; ++i) {
        if (i == kJobs / 3) {
            ASSERT_EQ(::kill(system.worker(Operation::addition)->pid(), SIGKILL), 0);
            killed_at = Clock::now();
        }
        const auto response = system.submit({{"operation", "addition"},
                                             {"a", i},
                                             {"b", i},
                                             {"mechanism", "kafka"},
                                             {"wait", false}});
        ASSERT_EQ(response.status, 202u) << response.body;
        ids.push_back(json::parse(response.body)["job_id"]);
    }
    system.worker(Operation::addition)->stop();  // reaps the killed process
    ASSERT_TRUE(eventually(
        [&] {
            return std::all_of(ids.begin(), ids.end(), [&](const auto& id) {
                return system.job(id)["status"] == "completed";
            });
        },
        std::chrono::seconds(90)));
    const double all_answered_s = seconds_since(killed_at);
    for (int i = 0; i < kJobs; ++i) {
        const auto job = system.job(ids[i]);
        EXPECT_EQ(job["result"], 2 * i) << ids[i];
    }
    // Every request computed twice shows as a second result on the topic; job_submitter took
    // the first and counted the others as unclaimed.
    std::map<std::string, int> results;
    std::istringstream lines(run_command("kcat -b " + system.bootstrap() + " -C -t " +
                                         system.topics().results() + " -o beginning -e -q"));
    for (std::string line; std::getline(lines, line);) {
        const auto message = json::parse(line, nullptr, false);
        if (message.is_object()) {
            ++results[message["job_id"].get<std::string>()];
        }
    }
    int duplicated_results = 0;
    for (const auto& id : ids) {
        EXPECT_GE(results[id], 1) << id;
        duplicated_results += std::max(results[id] - 1, 0);
    }
    const auto submitter_metrics = get(system.submitter()->url() + "/metrics").body;
    EXPECT_NE(submitter_metrics.find("calcmesh_jobs_submitted_total{mechanism=\"kafka\"} " +
                                     std::to_string(kJobs)),
              std::string::npos);
    EXPECT_EQ(metric(submitter_metrics, "calcmesh_kafka_results_unclaimed_total"),
              duplicated_results)
        << "each duplicate result was ignored, none shown as a second answer";

    // Each job's record once, although some were computed twice.
    std::map<std::string, int> per_job;
    ASSERT_TRUE(eventually(
        [&] {
            per_job = records_per_job(all_records(system.collector()->url()));
            return std::all_of(ids.begin(), ids.end(),
                               [&](const auto& id) { return per_job.count(id) == 1; });
        },
        std::chrono::seconds(20)));
    int records_duplicated = 0;
    for (const auto& id : ids) {
        records_duplicated += per_job[id] > 1;
    }
    EXPECT_EQ(records_duplicated, 0);
    const auto collector_metrics = get(system.collector()->url() + "/metrics").body;
    print_figures("worker_kill9_with_replica",
                  {{"jobs", std::to_string(kJobs)},
                   {"jobs_answered", std::to_string(ids.size())},
                   {"results_duplicated", std::to_string(duplicated_results)},
                   {"records_lost", "0"},
                   {"records_resent_and_stored_once",
                    std::to_string(static_cast<long>(
                        metric(collector_metrics, "calcmesh_log_records_duplicate_total")))},
                   {"records_duplicated", std::to_string(records_duplicated)},
                   {"all_answered_after_kill_s", std::to_string(all_answered_s)}});
    EXPECT_EQ(get(replica.url() + "/healthz").status, 200u);
}

TEST(DeliveryFaultWorker, KilledUnderHttpLoadLosesAtMostTheRecordsItHeldInMemory) {
    // The window of the http path: a job is answered before its record reaches log_collector,
    // so a worker killed -9 loses the records it still held, at most log-queue-capacity.
    TempDir dir("fault-worker-http-kill");
    ServiceProcess collector("log_collector", {"--data-dir", (dir.path() / "data").string()},
                             dir.path());
    constexpr int kCapacity = 10'000;
    ServiceProcess worker("worker",
                          {"--operation", "addition", "--log-collector-url", collector.url(),
                           "--log-queue-capacity", std::to_string(kCapacity)},
                          dir.path());
    std::mutex mutex;
    std::vector<std::string> answered;
    constexpr int kHttpClients = 8;
    std::vector<std::jthread> clients;
    clients.reserve(kHttpClients);
    for (int c = 0; c < kHttpClients; ++c) {
        clients.emplace_back([&, c](const std::stop_token& stop) {
            for (int i = 0; !stop.stop_requested(); ++i) {
                const auto id = "h" + std::to_string(c) + "-" + std::to_string(i);
                const auto response =
                    try_request(http::verb::get, worker.url() + "/compute?a=1&b=2&job_id=" + id, {},
                                std::chrono::seconds(2));
                if (!response) {
                    return;  // the worker is gone
                }
                if (response->status == 200) {
                    std::lock_guard lock(mutex);
                    answered.push_back(id);
                }
            }
        });
    }
    const auto started = Clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(2));
    ASSERT_EQ(::kill(worker.pid(), SIGKILL), 0);
    const double load_s = seconds_since(started);
    stop_and_join(clients);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const auto per_job = records_per_job(all_records(collector.url()));
    std::size_t lost = 0;
    for (const auto& id : answered) {
        lost += per_job.count(id) == 0;
    }
    EXPECT_LE(lost, static_cast<std::size_t>(kCapacity));
    EXPECT_GT(answered.size(), lost);
    const double rate = static_cast<double>(answered.size()) / load_s;
    print_figures("worker_kill9_http",
                  {{"jobs_answered", std::to_string(answered.size())},
                   {"jobs_per_s", std::to_string(rate)},
                   {"records_lost", std::to_string(lost)},
                   {"window_ms", std::to_string(1000.0 * static_cast<double>(lost) / rate)}});
}

TEST(DeliveryFaultBroker, KilledAndRestartedMidStreamNothingHangsAndEveryoneReconnects) {
    OwnBroker broker("fault-broker-kill");
    constexpr auto kKafkaTimeout = std::chrono::milliseconds(8000);
    // Room for every job of the run in job_submitter's table: the http load ends thousands of
    // jobs a second, which would push the queued jobs out between their end and the check.
    KafkaSystem system("fault-broker-kill-system", broker.bootstrap(), {Operation::addition},
                       {"--kafka-timeout-ms", std::to_string(kKafkaTimeout.count()),
                        "--jobs-capacity", "1000000"});
    const auto submitter_url = system.submitter()->url();
    auto& worker = system.worker(Operation::addition);

    // Requests that are in the broker but not yet answered when it dies: the worker is held
    // until the broker has acknowledged them all.
    constexpr int kQueued = 50;
    std::vector<std::string> queued;
    ASSERT_EQ(::kill(worker->pid(), SIGSTOP), 0);
    {
        Resume resume{worker->pid()};
        for (int i = 0; i < kQueued; ++i) {
            const auto response = system.submit({{"operation", "addition"},
                                                 {"a", i},
                                                 {"b", 100},
                                                 {"mechanism", "kafka"},
                                                 {"wait", false}});
            ASSERT_EQ(response.status, 202u) << response.body;
            queued.push_back(json::parse(response.body)["job_id"]);
        }
        ASSERT_TRUE(eventually([&] {
            return metric(get(submitter_url + "/metrics").body,
                          "calcmesh_kafka_messages_delivered_total") >= kQueued;
        }));
        broker.kill();
    }
    const auto killed_at = Clock::now();

    // Across the outage and the restart: kafka jobs end within their deadline, with a result
    // or a clear error; http jobs keep working.
    std::mutex mutex;
    std::map<std::string, int> kafka_outcomes;
    double slowest_kafka_s = 0;
    int http_ok = 0;
    int http_failed = 0;
    std::jthread kafka_client([&](const std::stop_token& stop) {
        while (!stop.stop_requested()) {
            const auto sent = Clock::now();
            const auto response = try_request(
                http::verb::post, submitter_url + "/submit",
                json{{"operation", "addition"}, {"a", 1}, {"b", 2}, {"mechanism", "kafka"}}.dump(),
                kKafkaTimeout + std::chrono::seconds(5));
            std::lock_guard lock(mutex);
            slowest_kafka_s = std::max(slowest_kafka_s, seconds_since(sent));
            if (!response) {
                ++kafka_outcomes["no_answer"];
                continue;
            }
            const auto body = json::parse(response->body, nullptr, false);
            ++kafka_outcomes[response->status == 200 ? "completed"
                                                     : body["error"].value("code", "?") + "_" +
                                                           std::to_string(response->status)];
            if (response->status != 200) {
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
            }
        }
    });
    std::jthread http_client([&](const std::stop_token& stop) {
        while (!stop.stop_requested()) {
            const auto response = try_request(
                http::verb::post, submitter_url + "/submit",
                json{{"operation", "addition"}, {"a", 1}, {"b", 2}, {"mechanism", "http"}}.dump());
            std::lock_guard lock(mutex);
            (response && response->status == 200 ? http_ok : http_failed)++;
        }
    });

    std::this_thread::sleep_for(std::chrono::seconds(3));
    const auto restarting = Clock::now();
    broker.restart();
    const double restart_s = seconds_since(restarting);
    // Everyone reconnects on their own: a new kafka job is answered.
    std::optional<double> kafka_back_after_s;
    ASSERT_TRUE(eventually(
        [&] {
            const auto response = try_request(
                http::verb::post, submitter_url + "/submit",
                json{{"operation", "addition"}, {"a", 20}, {"b", 22}, {"mechanism", "kafka"}}
                    .dump(),
                kKafkaTimeout + std::chrono::seconds(5));
            if (response && response->status == 200) {
                kafka_back_after_s = seconds_since(restarting);
                return true;
            }
            return false;
        },
        std::chrono::seconds(90)));
    std::this_thread::sleep_for(std::chrono::seconds(1));
    kafka_client.request_stop();
    http_client.request_stop();
    kafka_client.join();
    http_client.join();

    // The requests in the broker when it died are answered after the restart.
    ASSERT_TRUE(eventually(
        [&] {
            return std::all_of(queued.begin(), queued.end(), [&](const auto& id) {
                return system.job(id)["status"] == "completed";
            });
        },
        std::chrono::seconds(60)));
    for (int i = 0; i < kQueued; ++i) {
        EXPECT_EQ(system.job(queued[i])["result"], i + 100);
    }
    std::ostringstream outcomes;
    for (const auto& [outcome, count] : kafka_outcomes) {
        outcomes << outcome << ':' << count << ',';
        EXPECT_TRUE(outcome == "completed" || outcome == "broker_unavailable_503" ||
                    outcome == "job_timeout_504")
            << outcome << " x" << count;
    }
    EXPECT_LT(slowest_kafka_s, std::chrono::duration<double>(kKafkaTimeout).count() + 2)
        << "every kafka job ended within its deadline";
    EXPECT_GT(http_ok, 0);
    EXPECT_EQ(http_failed, 0) << "http jobs do not depend on the broker";
    for (auto* service : {system.submitter().get(), worker.get()}) {
        EXPECT_TRUE(eventually([&] {
            return json::parse(get(service->url() + "/readyz")
                                   .body)["dependencies"]["kafka"]["broker_reachable"] == true;
        }));
    }
    print_figures(
        "broker_kill9",
        {{"queued_jobs_completed_after_restart", std::to_string(kQueued)},
         {"kafka_outcomes", outcomes.str()},
         {"slowest_kafka_answer_s", std::to_string(slowest_kafka_s)},
         {"http_jobs_ok", std::to_string(http_ok)},
         {"http_jobs_failed", std::to_string(http_failed)},
         {"outage_s", std::to_string(std::chrono::duration<double>(restarting - killed_at).count() +
                                     restart_s)},
         {"broker_start_s", std::to_string(restart_s)},
         {"kafka_back_after_broker_start_s", std::to_string(*kafka_back_after_s)}});
}

/// A tmpfs of a test's own, unmounted at the end.
class SmallFilesystem {
  public:
    SmallFilesystem(const std::filesystem::path& at, const std::string& size) : at_(at) {
        std::filesystem::create_directories(at_);
        mounted_ = ::mount("calcmesh-test", at_.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
    }
    ~SmallFilesystem() {
        if (mounted_) {
            ::umount2(at_.c_str(), MNT_DETACH);
        }
    }
    bool mounted() const { return mounted_; }
    bool resize(const std::string& size) {
        return ::mount("calcmesh-test", at_.c_str(), "tmpfs", MS_REMOUNT,
                       ("size=" + size).c_str()) == 0;
    }

  private:
    std::filesystem::path at_;
    bool mounted_ = false;
};

TEST(DeliveryFaultDisk, FullDiskIsRefusedNeverAcknowledgedAndRecoversWhenSpaceReturns) {
    if (::geteuid() != 0) {
        GTEST_SKIP() << "mounting a small filesystem needs root";
    }
    TempDir dir("fault-disk-full");
    SmallFilesystem small(dir.path() / "volume", "256k");
    ASSERT_TRUE(small.mounted()) << std::strerror(errno);
    const std::vector<std::string> args = {"--data-dir", (dir.path() / "volume" / "data").string()};
    auto collector = std::make_unique<ServiceProcess>("log_collector", args, dir.path());

    std::set<std::string> acknowledged;
    ClientResponse refused;
    int batch = 0;
    const auto post_batch = [&] {
        std::vector<std::string> ids;
        std::string body = "[";
        for (int i = 0; i < 20; ++i) {
            ids.push_back("d" + std::to_string(batch) + "-" + std::to_string(i));
            body += (i ? "," : "") + log_record_line(ids.back(), "j-" + ids.back(), batch);
        }
        ++batch;
        auto response = post(collector->url() + "/save_log", body + "]");
        if (response.status == 201) {
            acknowledged.insert(ids.begin(), ids.end());
        }
        return response;
    };
    for (int i = 0; i < 1000; ++i) {
        refused = post_batch();
        if (refused.status != 201) {
            break;
        }
    }
    ASSERT_TRUE(refused.status == 507u || refused.status == 503u) << refused.body;
    EXPECT_EQ(json::parse(refused.body)["error"]["code"], "storage_failure");
    EXPECT_NE(json::parse(refused.body)["error"]["message"].get<std::string>().find("space"),
              std::string::npos)
        << refused.body;
    EXPECT_EQ(get(collector->url() + "/readyz").status, 503u);
    const auto stored_ids = [&] {
        std::set<std::string> ids;
        for (const auto& record : all_records(collector->url())) {
            ids.insert(record["record_id"].get<std::string>());
        }
        return ids;
    };
    EXPECT_EQ(stored_ids(), acknowledged) << "what is served is exactly what was acknowledged";
    const auto acknowledged_when_full = acknowledged.size();

    // Space returns: records are taken again, and nothing earlier was lost.
    ASSERT_TRUE(small.resize("2m")) << std::strerror(errno);
    const auto freed = Clock::now();
    ASSERT_EQ(post_batch().status, 201u);
    const double recovered_s = seconds_since(freed);
    EXPECT_EQ(get(collector->url() + "/readyz").status, 200u);
    // And after a crash, the file holds the acknowledged records and nothing else.
    ASSERT_EQ(::kill(collector->pid(), SIGKILL), 0);
    collector->stop();
    collector = std::make_unique<ServiceProcess>("log_collector", args, dir.path());
    EXPECT_EQ(stored_ids(), acknowledged);
    print_figures("disk_full",
                  {{"records_acknowledged_until_full", std::to_string(acknowledged_when_full)},
                   {"refused_status", std::to_string(refused.status)},
                   {"records_acknowledged_not_on_disk", "0"},
                   {"recovered_after_space_returned_s", std::to_string(recovered_s)}});
}

}  // namespace
}  // namespace calcmesh::testing
