#include "job_table.hpp"

#include <gtest/gtest.h>

namespace calcmesh::job_submitter {
namespace {

Job pending_job() {
    Job job;
    job.input = {"j-1", Operation::division, -7, 2};
    job.mechanism = Mechanism::kafka;
    job.submitted_at = std::chrono::system_clock::now();
    return job;
}

TEST(JobTable, JobIsTheCompactJsonOfItsObjectInEveryState) {
    JobTable table(10);
    table.add(pending_job());
    const auto pending = nlohmann::json::parse(to_json_text(*table.find("j-1")));
    EXPECT_EQ(pending["status"], "pending");
    EXPECT_FALSE(pending.contains("result"));
    EXPECT_FALSE(pending.contains("completed_at"));

    const WorkerIdentity worker{"division_worker", "w \"1\"\n", "c1", "node-a"};
    const auto completed = table.finish("j-1", Outcome{-3, -1}, worker);
    ASSERT_TRUE(completed);
    EXPECT_FALSE(table.finish("j-1", Outcome{0, std::nullopt}, worker)) << "only the first end";
    const Error timeout{ErrorCode::job_timeout, "no answer in time"};
    auto failed = pending_job();
    failed.input.job_id = "j-2";
    table.add(failed);
    const auto division =
        table.finish("j-2", fail(ErrorCode::division_by_zero, "b is 0", "b"), std::nullopt);
    ASSERT_TRUE(division);

    for (const auto& text : {to_json_text(pending_job()), to_json_text(pending_job(), &timeout),
                             to_json_text(*completed), to_json_text(*division),
                             to_json_text(*division, &division->outcome.error())}) {
        EXPECT_EQ(text, nlohmann::json::parse(text).dump());
    }
    const auto done = nlohmann::json::parse(to_json_text(*completed));
    EXPECT_EQ(done["status"], "completed");
    EXPECT_EQ(done["result"], -3);
    EXPECT_EQ(done["remainder"], -1);
    EXPECT_EQ(done["worker_instance"], worker.instance);
    EXPECT_TRUE(done["elapsed_ms"].is_number());
    const auto late = nlohmann::json::parse(to_json_text(pending_job(), &timeout));
    EXPECT_EQ(late["status"], "pending");
    EXPECT_EQ(late["error"]["code"], "job_timeout");
    EXPECT_EQ(late["error"]["job_id"], "j-1");
    const auto refused = nlohmann::json::parse(to_json_text(*division));
    EXPECT_EQ(refused["status"], "failed");
    EXPECT_EQ(refused["error"]["field"], "b");
    EXPECT_FALSE(refused["error"].contains("job_id"));
}

TEST(JobTable, ForgetsTheOldestJobWhenFull) {
    JobTable table(2);
    for (const auto* id : {"a", "b", "c"}) {
        auto job = pending_job();
        job.input.job_id = id;
        table.add(job);
    }
    EXPECT_EQ(table.size(), 2U);
    EXPECT_FALSE(table.find("a"));
    EXPECT_TRUE(table.find("c"));
}

TEST(JobTable, AJobStillPendingOutlivesLaterJobsThatEnded) {
    JobTable table(3);
    const auto add = [&](const char* id) {
        auto job = pending_job();
        job.input.job_id = id;
        table.add(job);
    };
    add("waiting");
    for (const auto* id : {"quick-1", "quick-2", "quick-3", "quick-4"}) {
        add(id);
        ASSERT_TRUE(table.finish(id, Outcome{1}, std::nullopt));
    }
    EXPECT_EQ(table.size(), 3U);
    EXPECT_TRUE(table.find("waiting")) << "a pending job goes only when no ended job is left";
    EXPECT_FALSE(table.find("quick-1"));
    EXPECT_FALSE(table.find("quick-2"));
    EXPECT_TRUE(table.find("quick-4"));
    // The late result still completes it.
    EXPECT_TRUE(table.finish("waiting", Outcome{2}, std::nullopt));
    add("next");
    EXPECT_TRUE(table.find("waiting")) << "ended last, so forgotten last";
    EXPECT_FALSE(table.find("quick-3"));
}

}  // namespace
}  // namespace calcmesh::job_submitter
