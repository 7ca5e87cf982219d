// The job index against a plain multimap, across the merges of its tail.
#include "job_index.hpp"

#include <gtest/gtest.h>

#include <map>
#include <random>

namespace calcmesh::log_collector {
namespace {

TEST(JobIndex, FindsEveryOffsetOfAJobInRangeOldestFirstAcrossMerges) {
    JobIndex index;
    std::multimap<std::uint64_t, std::uint64_t> expected;
    std::mt19937_64 random(7);
    // 300 000 records over 100 000 jobs: several merges of the tail, and a tail left over.
    std::uint64_t offset = 0;
    for (int i = 0; i < 300'000; ++i) {
        const std::uint64_t job = random() % 100'000;
        index.add(job, offset);
        expected.emplace(job, offset);
        offset += 100 + random() % 200;
    }
    EXPECT_EQ(index.size(), expected.size());
    for (const std::uint64_t job : {0ULL, 1ULL, 4242ULL, 99'999ULL, 123'456ULL}) {
        for (const auto [from, to] : {std::pair<std::uint64_t, std::uint64_t>{0, offset},
                                      {offset / 3, offset / 2},
                                      {offset - 1000, offset}}) {
            std::vector<std::uint64_t> wanted;
            const auto [first, last] = expected.equal_range(job);
            for (auto it = first; it != last; ++it) {
                if (it->second >= from && it->second < to) {
                    wanted.push_back(it->second);
                }
            }
            std::sort(wanted.begin(), wanted.end());
            EXPECT_EQ(index.find(job, from, to), wanted)
                << "job " << job << " in [" << from << ", " << to << ")";
        }
    }
}

TEST(JobIndex, KeepsTheLastRecordsOnlyAndSaysFromWhere) {
    constexpr std::size_t kBlock = JobIndex::kBlockRecords;
    JobIndex index(2 * kBlock);
    // Job 7 once in every block, at its first record.
    std::vector<std::uint64_t> job_seven;
    for (std::uint64_t record = 0; record < 5 * kBlock; ++record) {
        const std::uint64_t offset = record * 10;
        if (record % kBlock == 0) {
            job_seven.push_back(offset);
        }
        index.add(record % kBlock == 0 ? 7 : 1'000 + record, offset);
        EXPECT_LE(index.size(), 3 * kBlock) << "at record " << record;
    }
    // Five blocks merged, three dropped one by one: the last two remain.
    EXPECT_EQ(index.size(), 2 * kBlock);
    EXPECT_EQ(index.indexed_from(), job_seven[3]);
    EXPECT_EQ(index.find(7, 0, 5 * kBlock * 10),
              (std::vector<std::uint64_t>{job_seven[3], job_seven[4]}));
    EXPECT_EQ(index.find(1'000 + 1, 0, 5 * kBlock * 10), std::vector<std::uint64_t>{})
        << "a dropped record is not found: the reader scans before indexed_from";
    const std::uint64_t last = 5 * kBlock - 1;
    EXPECT_EQ(index.find(1'000 + last, 0, 5 * kBlock * 10), std::vector<std::uint64_t>{last * 10});
}

}  // namespace
}  // namespace calcmesh::log_collector
