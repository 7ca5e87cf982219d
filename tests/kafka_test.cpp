// The kafka mechanism against the real broker that the test run started (see CMakeLists.txt).

#include "calcmesh/kafka.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "calcmesh/arithmetic.hpp"
#include "calcmesh/worker_urls.hpp"
#include "kafka_system.hpp"
#include "service_process.hpp"

namespace calcmesh::testing {
namespace {

using nlohmann::json;

std::vector<Operation> all_operations() {
    return {kAllOperations.begin(), kAllOperations.end()};
}

TEST(Kafka, ComputesEveryOperationAndLogsIt) {
    KafkaSystem system("kafka-ops", shared_bootstrap(), all_operations());
    const std::vector<std::tuple<std::string, std::int64_t, std::int64_t, std::int64_t>> cases = {
        {"addition", 40, 2, 42},
        {"subtraction", 50, 8, 42},
        {"multiplication", 6, 7, 42},
        {"division", 7, 2, 3}};
    for (const auto& [operation, a, b, expected] : cases) {
        const auto response =
            system.submit({{"operation", operation}, {"a", a}, {"b", b}, {"mechanism", "kafka"}});
        ASSERT_EQ(response.status, 200u) << response.body;
        const auto job = json::parse(response.body);
        EXPECT_EQ(job["result"], expected);
        EXPECT_EQ(job["mechanism"], "kafka");
        EXPECT_EQ(job["worker"], operation + "_worker");
        if (operation == "division") {
            EXPECT_EQ(job["remainder"], 1);
        }
        const auto id = job["job_id"].get<std::string>();
        ASSERT_TRUE(eventually([&] { return system.logs("?job_id=" + id).size() == 1; }));
        EXPECT_EQ(system.logs("?job_id=" + id)[0]["mechanism"], "kafka");
    }
    // A domain error comes back through Kafka as a failed job.
    const auto zero =
        system.submit({{"operation", "division"}, {"a", 1}, {"b", 0}, {"mechanism", "kafka"}});
    EXPECT_EQ(zero.status, 400u);
    EXPECT_EQ(json::parse(zero.body)["error"]["code"], "division_by_zero");
}

TEST(Kafka, AJobSentAsSoonAsTheSubmitterListensIsNotRefused) {
    KafkaSystem system("kafka-early", shared_bootstrap(), {Operation::addition});
    // A second submitter, asked at once: its first metadata probe and its assignment of the
    // results topic are still under way, which is no reason to refuse the job.
    TempDir dir("kafka-early-submitter");
    ServiceProcess fresh("job_submitter", system.submitter_args(), dir.path());
    const auto response =
        post(fresh.url() + "/submit",
             json{{"operation", "addition"}, {"a", 40}, {"b", 2}, {"mechanism", "kafka"}}.dump());
    ASSERT_EQ(response.status, 200u) << response.body;
    EXPECT_EQ(json::parse(response.body)["result"], 42);
}

TEST(Kafka, ManyJobsInFlightEachAnsweredOnce) {
    KafkaSystem system("kafka-many", shared_bootstrap(), all_operations());
    constexpr int kJobs = 400;
    std::map<std::string, std::int64_t> expected;
    for (int i = 0; i < kJobs; ++i) {
        const auto operation = kAllOperations[i % 4];
        const std::int64_t a = 1000 + i;
        const std::int64_t b = 1 + i % 7;
        const auto response = system.submit({{"operation", operation_name(operation)},
                                             {"a", a},
                                             {"b", b},
                                             {"mechanism", "kafka"},
                                             {"wait", false}});
        ASSERT_EQ(response.status, 202u) << response.body;
        expected[json::parse(response.body)["job_id"]] = compute(operation, a, b).value().result;
    }
    ASSERT_TRUE(eventually(
        [&] {
            return std::all_of(expected.begin(), expected.end(), [&](const auto& entry) {
                return system.job(entry.first)["status"] == "completed";
            });
        },
        std::chrono::seconds(60)));
    for (const auto& [id, result] : expected) {
        EXPECT_EQ(system.job(id)["result"], result) << id;
    }
    ASSERT_TRUE(
        eventually([&] { return system.logs().size() == kJobs; }, std::chrono::seconds(20)));
}

TEST(Kafka, AWorkerKilledMidStreamLosesNoJob) {
    KafkaSystem system("kafka-kill", shared_bootstrap(), {Operation::addition});
    constexpr int kJobs = 300;
    std::vector<std::string> ids;
    for (int i = 0; i < kJobs; ++i) {
        if (i == kJobs / 3) {
            ::kill(system.worker(Operation::addition)->pid(), SIGKILL);
        }
        const auto response = system.submit({{"operation", "addition"},
                                             {"a", i},
                                             {"b", i},
                                             {"mechanism", "kafka"},
                                             {"wait", false}});
        ASSERT_EQ(response.status, 202u);
        ids.push_back(json::parse(response.body)["job_id"]);
    }
    system.worker(Operation::addition)->stop();  // reaps the killed process
    system.start_worker(Operation::addition);
    ASSERT_TRUE(eventually(
        [&] {
            return std::all_of(ids.begin(), ids.end(), [&](const auto& id) {
                return system.job(id)["status"] == "completed";
            });
        },
        std::chrono::seconds(90)));
    for (int i = 0; i < kJobs; ++i) {
        EXPECT_EQ(system.job(ids[i])["result"], 2 * i);
    }
    // Redelivered requests may be computed twice, but each job was answered once.
    const auto metrics = get(system.submitter()->url() + "/metrics").body;
    EXPECT_NE(metrics.find("calcmesh_jobs_submitted_total{mechanism=\"kafka\"} 300"),
              std::string::npos);
}

TEST(Kafka, ARestartedSubmitterIgnoresLateResults) {
    // The fresh job after the restart must beat the same timeout the late one misses.
    const std::vector<std::string> fixed_instance = {"--instance", "submitter-late-test",
                                                     "--kafka-timeout-ms",
                                                     std::to_string(500 * time_scale())};
    KafkaSystem system("kafka-late", shared_bootstrap(), {Operation::subtraction}, fixed_instance);
    auto& worker = system.worker(Operation::subtraction);
    ASSERT_EQ(::kill(worker->pid(), SIGSTOP), 0);
    const auto late =
        system.submit({{"operation", "subtraction"}, {"a", 9}, {"b", 4}, {"mechanism", "kafka"}});
    EXPECT_EQ(late.status, 504u) << late.body;
    const auto late_body = json::parse(late.body);
    EXPECT_EQ(late_body["error"]["code"], "job_timeout");
    const auto late_id = late_body["job_id"].get<std::string>();
    EXPECT_NE(late_body["error"]["message"].get<std::string>().find(late_id), std::string::npos);
    EXPECT_EQ(system.job(late_id)["status"], "pending");

    system.submitter()->stop();
    system.start_submitter();
    ASSERT_EQ(::kill(worker->pid(), SIGCONT), 0);
    // The result for the old instance's job arrives and is ignored; new jobs work.
    const auto fresh =
        system.submit({{"operation", "subtraction"}, {"a", 9}, {"b", 4}, {"mechanism", "kafka"}});
    ASSERT_EQ(fresh.status, 200u) << fresh.body;
    EXPECT_EQ(json::parse(fresh.body)["result"], 5);
    EXPECT_EQ(get(system.submitter()->url() + "/jobs/" + late_id).status, 404u);
    EXPECT_EQ(get(system.submitter()->url() + "/healthz").status, 200u);
}

TEST(Kafka, ALateResultCompletesItsPendingJob) {
    KafkaSystem system("kafka-late-complete", shared_bootstrap(), {Operation::multiplication},
                       {"--kafka-timeout-ms", "300"});
    auto& worker = system.worker(Operation::multiplication);
    ASSERT_EQ(::kill(worker->pid(), SIGSTOP), 0);
    const auto response = system.submit(
        {{"operation", "multiplication"}, {"a", 3}, {"b", 5}, {"mechanism", "kafka"}});
    EXPECT_EQ(response.status, 504u);
    const auto id = json::parse(response.body)["job_id"].get<std::string>();
    ASSERT_EQ(::kill(worker->pid(), SIGCONT), 0);
    ASSERT_TRUE(eventually([&] { return system.job(id)["status"] == "completed"; }));
    EXPECT_EQ(system.job(id)["result"], 15);
}

TEST(Kafka, AWorkerSurvivesMalformedMessages) {
    KafkaSystem system("kafka-poison", shared_bootstrap(), {Operation::division});
    const auto topic = system.topics().request(Operation::division);
    const auto produce = [&](const std::string& key, const std::string& value) {
        run_command("printf '%s\\n' '" + value + "' | kcat -b " + system.bootstrap() + " -P -t " +
                    topic + " -k " + key);
    };
    produce("junk", "this is not json");
    produce(
        "j-poison-1",
        R"({"job_id":"j-poison-1","operation":"division","a":"seven","b":2,"reply_to":"nobody"})");
    produce("j-poison-2",
            R"({"job_id":"j-poison-2","operation":"addition","a":1,"b":2,"reply_to":"nobody"})");
    // The next good job is served.
    const auto good =
        system.submit({{"operation", "division"}, {"a", 9}, {"b", 3}, {"mechanism", "kafka"}});
    ASSERT_EQ(good.status, 200u) << good.body;
    EXPECT_EQ(json::parse(good.body)["result"], 3);
    // Messages with a job id are answered with an error result; all three are counted.
    const auto results = run_command("kcat -b " + system.bootstrap() + " -C -t " +
                                     system.topics().results() + " -o beginning -e -q");
    std::map<std::string, std::string> errors;
    std::istringstream lines(results);
    for (std::string line; std::getline(lines, line);) {
        const auto message = json::parse(line, nullptr, false);
        if (message.is_object() && message.contains("error")) {
            errors[message["job_id"]] = message["error"]["code"];
        }
    }
    EXPECT_EQ(errors["j-poison-1"], "invalid_field");
    EXPECT_EQ(errors["j-poison-2"], "unknown_operation");
    ASSERT_TRUE(eventually([&] {
        return get(system.worker(Operation::division)->url() + "/metrics")
                   .body.find("calcmesh_kafka_messages_rejected_total 3") != std::string::npos;
    }));
    EXPECT_EQ(get(system.worker(Operation::division)->url() + "/healthz").status, 200u);
}

TEST(Kafka, KcatAloneCanPlayTheWorker) {
    KafkaSystem system("kafka-kcat", shared_bootstrap(), {}, {"--kafka-timeout-ms", "30000"});
    const auto response = system.submit(
        {{"operation", "division"}, {"a", 22}, {"b", 7}, {"mechanism", "kafka"}, {"wait", false}});
    ASSERT_EQ(response.status, 202u);
    const auto id = json::parse(response.body)["job_id"].get<std::string>();

    // Read the request as any Kafka client would, and answer it by hand.
    const auto request = json::parse(run_command("kcat -b " + system.bootstrap() + " -C -t " +
                                                 system.topics().request(Operation::division) +
                                                 " -o beginning -c 1 -e -q"));
    EXPECT_EQ(request["job_id"], id);
    EXPECT_EQ(request["operation"], "division");
    EXPECT_EQ(request["a"], 22);
    EXPECT_EQ(request["b"], 7);
    const json result = {{"job_id", id},
                         {"operation", "division"},
                         {"a", 22},
                         {"b", 7},
                         {"result", 3},
                         {"remainder", 1},
                         {"worker", "kcat_worker"},
                         {"reply_to", request["reply_to"]}};
    run_command("printf '%s\\n' '" + result.dump() + "' | kcat -b " + system.bootstrap() +
                " -P -t " + system.topics().results() + " -k " + id);
    ASSERT_TRUE(eventually([&] { return system.job(id)["status"] == "completed"; }));
    const auto job = system.job(id);
    EXPECT_EQ(job["result"], 3);
    EXPECT_EQ(job["remainder"], 1);
    EXPECT_EQ(job["worker"], "kcat_worker");
}

TEST(KafkaOutage, BrokerDownFailsKafkaJobsFastWhileHttpWorks) {
    // This test stops its broker, so it runs one of its own.
    OwnBroker broker("kafka-outage-broker");
    const auto bootstrap = broker.bootstrap();

    TempDir dir("kafka-outage");
    Topics topics(bootstrap);
    auto worker_args = topics.flags();
    worker_args.insert(worker_args.end(),
                       {"--kafka-bootstrap-servers", bootstrap, "--operation", "addition"});
    ServiceProcess worker("worker", worker_args, dir.path());
    auto submitter_args = topics.flags();
    submitter_args.insert(submitter_args.end(), {"--kafka-bootstrap-servers", bootstrap,
                                                 "--addition-worker-url", worker.url()});
    ServiceProcess submitter("job_submitter", submitter_args, dir.path());
    ASSERT_TRUE(eventually(
        [&] {
            return json::parse(get(submitter.url() + "/readyz")
                                   .body)["dependencies"]["kafka"]["reading_results"] == true;
        },
        std::chrono::seconds(30)));

    ASSERT_TRUE(broker.stop());
    ASSERT_TRUE(eventually([&] {
        return json::parse(get(submitter.url() + "/readyz")
                               .body)["dependencies"]["kafka"]["broker_reachable"] == false;
    }));
    const auto started = std::chrono::steady_clock::now();
    const auto kafka_job =
        post(submitter.url() + "/submit",
             json{{"operation", "addition"}, {"a", 1}, {"b", 2}, {"mechanism", "kafka"}}.dump());
    const auto elapsed = std::chrono::steady_clock::now() - started;
    EXPECT_EQ(kafka_job.status, 503u) << kafka_job.body;
    EXPECT_EQ(json::parse(kafka_job.body)["error"]["code"], "broker_unavailable");
    EXPECT_LT(elapsed, std::chrono::seconds(1)) << "a kafka job fails fast when the broker is down";
    const auto http_job =
        post(submitter.url() + "/submit",
             json{{"operation", "addition"}, {"a", 1}, {"b", 2}, {"mechanism", "http"}}.dump());
    EXPECT_EQ(http_job.status, 200u) << http_job.body;
    EXPECT_EQ(get(submitter.url() + "/readyz").status, 200u)
        << "http jobs still work, so it stays ready";
}

}  // namespace
}  // namespace calcmesh::testing
