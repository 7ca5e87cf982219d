#include "log_store.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <future>
#include <nlohmann/json.hpp>

namespace calcmesh::log_collector {
namespace {

class LogStoreTest : public ::testing::Test {
  protected:
    void SetUp() override {
        directory_ = std::filesystem::temp_directory_path() /
                     ("log_store_test_" + std::to_string(::getpid()) + "_" +
                      ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::remove_all(directory_);
    }
    void TearDown() override { std::filesystem::remove_all(directory_); }

    static StoredLine line(const std::string& id, const std::string& job, const std::string& op) {
        return {id, nlohmann::json{{"record_id", id}, {"job_id", job}, {"operation", op}}.dump(),
                job};
    }

    /// Appends and waits until the store says the records are durable.
    static Result<LogStore::AppendResult> append(LogStore& store, std::vector<StoredLine> lines) {
        std::promise<Result<LogStore::AppendResult>> done;
        auto future = done.get_future();
        store.append(std::move(lines), [&done](const Result<LogStore::AppendResult>& result) {
            done.set_value(result);
        });
        return future.get();
    }

    std::string file_text() const {
        std::ifstream in(directory_ / "logs.jsonl");
        return {std::istreambuf_iterator<char>(in), {}};
    }

    std::filesystem::path directory_;
};

TEST_F(LogStoreTest, CreatesAMissingDirectoryAndFile) {
    LogStore store(directory_ / "nested", SyncMode::group);
    EXPECT_EQ(store.recovery().records, 0u);
    EXPECT_TRUE(std::filesystem::exists(directory_ / "nested" / "logs.jsonl"));
    EXPECT_TRUE(store.read({}, 0, 10).value().records.empty());
}

TEST_F(LogStoreTest, AcknowledgedRecordsAreInTheFile) {
    {
        LogStore store(directory_, SyncMode::group);
        const auto result =
            append(store, {line("r1", "j1", "addition"), line("r2", "j2", "division")});
        ASSERT_TRUE(result);
        EXPECT_EQ(result.value().stored, 2u);
        // Acknowledged means on disk: the file holds both lines now, before the store closes.
        EXPECT_EQ(file_text(), line("r1", "j1", "addition").json + "\n" +
                                   line("r2", "j2", "division").json + "\n");
    }
    LogStore reopened(directory_, SyncMode::group);
    EXPECT_EQ(reopened.recovery().records, 2u);
    EXPECT_EQ(reopened.recovery().torn_bytes, 0u);
}

TEST_F(LogStoreTest, RecoveryCutsATornLastLine) {
    std::filesystem::create_directories(directory_);
    const std::string good = line("r1", "j1", "addition").json + "\n";
    const std::string torn = R"({"record_id":"r2","job_id":"j2","oper)";
    {
        std::ofstream out(directory_ / "logs.jsonl");
        out << good << torn;
    }
    LogStore store(directory_, SyncMode::group);
    EXPECT_EQ(store.recovery().records, 1u);
    EXPECT_EQ(store.recovery().torn_bytes, torn.size());
    EXPECT_EQ(file_text(), good);
    const auto page = store.read({}, 0, 10).value();
    ASSERT_EQ(page.records.size(), 1u);
    // New records follow the last complete one, not the torn bytes.
    ASSERT_TRUE(append(store, {line("r3", "j3", "addition")}));
    EXPECT_EQ(file_text(), good + line("r3", "j3", "addition").json + "\n");
}

TEST_F(LogStoreTest, RecoversAnEmptyFile) {
    std::filesystem::create_directories(directory_);
    std::ofstream(directory_ / "logs.jsonl").close();
    LogStore store(directory_, SyncMode::group);
    EXPECT_EQ(store.recovery().records, 0u);
    EXPECT_EQ(store.recovery().torn_bytes, 0u);
}

TEST_F(LogStoreTest, StoresARetriedRecordOnce) {
    LogStore store(directory_, SyncMode::group);
    ASSERT_TRUE(append(store, {line("r1", "j1", "addition")}));
    const auto again = append(store, {line("r1", "j1", "addition"), line("r2", "j2", "addition")});
    EXPECT_EQ(again.value().stored, 1u);
    EXPECT_EQ(again.value().duplicates, 1u);
    EXPECT_EQ(store.records(), 2u);
}

TEST_F(LogStoreTest, RemembersIdsAcrossRestarts) {
    {
        LogStore store(directory_, SyncMode::group);
        ASSERT_TRUE(append(store, {line("r1", "j1", "addition")}));
    }
    LogStore store(directory_, SyncMode::group);
    EXPECT_EQ(append(store, {line("r1", "j1", "addition")}).value().duplicates, 1u);
}

TEST_F(LogStoreTest, FiltersAndPagesOldestFirst) {
    LogStore store(directory_, SyncMode::group);
    for (int i = 0; i < 10; ++i) {
        ASSERT_TRUE(append(store, {line("r" + std::to_string(i), "j" + std::to_string(i),
                                        i % 2 ? "division" : "addition")}));
    }
    const auto first = store.read({}, 0, 4).value();
    ASSERT_EQ(first.records.size(), 4u);
    ASSERT_TRUE(first.next_cursor);
    EXPECT_NE(first.records[0].find("\"r0\""), std::string::npos);
    const auto second = store.read({}, *first.next_cursor, 100).value();
    EXPECT_EQ(second.records.size(), 6u);
    EXPECT_FALSE(second.next_cursor);
    EXPECT_NE(second.records[0].find("\"r4\""), std::string::npos);

    const auto divisions = store.read({.operation = "division"}, 0, 100).value();
    EXPECT_EQ(divisions.records.size(), 5u);
    const auto one_job = store.read({.job_id = "j7"}, 0, 100).value();
    ASSERT_EQ(one_job.records.size(), 1u);
    EXPECT_NE(one_job.records[0].find("\"r7\""), std::string::npos);
}

TEST_F(LogStoreTest, FindsAJobsRecordsThroughItsIndexAfterAppendsAndAfterRecovery) {
    const auto job_records = [](LogStore& store, const std::string& job, std::uint64_t cursor,
                                std::size_t limit) {
        return store.read({.job_id = job}, cursor, limit).value();
    };
    {
        LogStore store(directory_, SyncMode::group);
        for (int i = 0; i < 30; ++i) {
            // Job "jx" has every third record; the others one each.
            const auto job = i % 3 == 0 ? std::string("jx") : "j" + std::to_string(i);
            ASSERT_TRUE(append(store, {line("r" + std::to_string(i), job, "addition")}));
        }
        const auto page = job_records(store, "jx", 0, 100);
        ASSERT_EQ(page.records.size(), 10u);
        EXPECT_FALSE(page.next_cursor);
        EXPECT_NE(page.records[0].find("\"r0\""), std::string::npos);
        EXPECT_NE(page.records[9].find("\"r27\""), std::string::npos);
        EXPECT_TRUE(job_records(store, "j-none", 0, 100).records.empty());
    }
    // A torn last line of the same job is never indexed.
    {
        std::ofstream out(directory_ / "logs.jsonl", std::ios::app);
        out << R"({"record_id":"r30","job_id":"jx","oper)";
    }
    LogStore store(directory_, SyncMode::group);
    ASSERT_TRUE(append(store, {line("r31", "jx", "division")}));
    // Paged four at a time, oldest first, from the index built at recovery and the append.
    std::vector<std::string> seen;
    std::uint64_t cursor = 0;
    for (int pages = 0;; ++pages) {
        ASSERT_LT(pages, 4);
        const auto page = job_records(store, "jx", cursor, 4);
        seen.insert(seen.end(), page.records.begin(), page.records.end());
        if (!page.next_cursor) {
            break;
        }
        cursor = *page.next_cursor;
    }
    ASSERT_EQ(seen.size(), 11u);
    EXPECT_NE(seen[10].find("\"r31\""), std::string::npos);
    for (const auto& record : seen) {
        EXPECT_EQ(nlohmann::json::parse(record)["job_id"], "jx");
    }
    // The job filter combines with the others.
    const auto divisions = store.read({.job_id = "jx", .operation = "division"}, 0, 100).value();
    ASSERT_EQ(divisions.records.size(), 1u);
    EXPECT_NE(divisions.records[0].find("\"r31\""), std::string::npos);
}

TEST_F(LogStoreTest, AJobOlderThanTheIndexIsFoundByAScanAndPagedIntoTheIndexedPart) {
    // Three blocks of records and one more, with the smallest index: the first block is
    // dropped from it. Job "jx" is the first record, one in the middle and the last.
    constexpr std::size_t kRecords = 3 * JobIndex::kBlockRecords + 1;
    {
        std::filesystem::create_directories(directory_);
        std::ofstream out(directory_ / "logs.jsonl");
        for (std::size_t i = 0; i < kRecords; ++i) {
            const bool of_jx = i == 0 || i == kRecords / 2 || i == kRecords - 1;
            out << line("r" + std::to_string(i), of_jx ? "jx" : "j" + std::to_string(i), "addition")
                       .json
                << '\n';
        }
    }
    LogStore store(directory_, SyncMode::group, JobIndex::kBlockRecords);
    ASSERT_EQ(store.recovery().records, kRecords);
    std::vector<std::string> seen;
    std::uint64_t cursor = 0;
    for (int pages = 0;; ++pages) {
        ASSERT_LT(pages, 4);
        const auto page = store.read({.job_id = "jx"}, cursor, 1).value();
        seen.insert(seen.end(), page.records.begin(), page.records.end());
        if (!page.next_cursor) {
            break;
        }
        cursor = *page.next_cursor;
    }
    ASSERT_EQ(seen.size(), 3u);
    EXPECT_NE(seen[0].find("\"r0\""), std::string::npos) << "before the index: scanned";
    EXPECT_NE(seen[1].find("\"r" + std::to_string(kRecords / 2) + "\""), std::string::npos);
    EXPECT_NE(seen[2].find("\"r" + std::to_string(kRecords - 1) + "\""), std::string::npos);
    // A job id that is only a part of another's is not taken for it by the scan.
    EXPECT_TRUE(store.read({.job_id = "j1"}, 0, 10).value().records.size() == 1);
}

TEST_F(LogStoreTest, RejectsACursorInsideARecord) {
    LogStore store(directory_, SyncMode::group);
    ASSERT_TRUE(append(store, {line("r1", "j1", "addition")}));
    const auto page = store.read({}, 5, 10);
    ASSERT_FALSE(page);
    EXPECT_EQ(page.error().field, "cursor");
    EXPECT_FALSE(store.read({}, 1'000'000, 10));
}

TEST_F(LogStoreTest, GroupCommitSharesSyncsAmongConcurrentAppends) {
    LogStore store(directory_, SyncMode::group);
    constexpr int kAppends = 200;
    std::vector<std::promise<bool>> done(kAppends);
    for (int i = 0; i < kAppends; ++i) {
        store.append({line("r" + std::to_string(i), "j", "addition")},
                     [&done, i](const Result<LogStore::AppendResult>& result) {
                         done[i].set_value(result.has_value());
                     });
    }
    for (auto& promise : done) {
        EXPECT_TRUE(promise.get_future().get());
    }
    EXPECT_EQ(store.records(), static_cast<std::uint64_t>(kAppends));
    EXPECT_LT(store.syncs(), static_cast<std::uint64_t>(kAppends));
}

TEST_F(LogStoreTest, EachModeSyncsEveryRecord) {
    LogStore store(directory_, SyncMode::each);
    ASSERT_TRUE(append(store, {line("r1", "j", "addition"), line("r2", "j", "addition")}));
    EXPECT_EQ(store.syncs(), 2u);
}

}  // namespace
}  // namespace calcmesh::log_collector
