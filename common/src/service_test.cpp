#include "calcmesh/service.hpp"

#include <gtest/gtest.h>
#include <sched.h>

#include <algorithm>

namespace calcmesh {
namespace {

TEST(CpusWithinLimit, AQuotaCapsTheCpusRoundedUp) {
    EXPECT_EQ(cpus_within_limit(8, "200000 100000"), 2u);
    EXPECT_EQ(cpus_within_limit(8, "150000 100000"), 2u);
    EXPECT_EQ(cpus_within_limit(8, "50000 100000"), 1u);   // half a CPU still gets a loop
    EXPECT_EQ(cpus_within_limit(2, "400000 100000"), 2u);  // a limit above the CPUs
}

TEST(CpusWithinLimit, NoLimitOrUnreadableTextLeavesTheCpus) {
    EXPECT_EQ(cpus_within_limit(4, "max 100000"), 4u);
    EXPECT_EQ(cpus_within_limit(4, ""), 4u);
    EXPECT_EQ(cpus_within_limit(4, "-1 100000"), 4u);
    EXPECT_EQ(cpus_within_limit(4, "100000 0"), 4u);
}

TEST(UsableCpus, AtLeastOneAndNoMoreThanTheAffinityAllows) {
    cpu_set_t set;
    CPU_ZERO(&set);
    ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
    const auto cpus = usable_cpus();
    EXPECT_GE(cpus, 1u);
    EXPECT_LE(cpus, static_cast<unsigned>(CPU_COUNT(&set)));
}

TEST(UsableCpus, FollowsTheAffinity) {
    cpu_set_t saved;
    CPU_ZERO(&saved);
    ASSERT_EQ(sched_getaffinity(0, sizeof saved, &saved), 0);
    cpu_set_t one;
    CPU_ZERO(&one);
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (CPU_ISSET(cpu, &saved)) {
            CPU_SET(cpu, &one);
            break;
        }
    }
    ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
    const auto cpus = usable_cpus();
    ASSERT_EQ(sched_setaffinity(0, sizeof saved, &saved), 0);
    EXPECT_EQ(cpus, 1u);
}

TEST(CommonConfig, ZeroThreadsBecomeOnePerUsableCpu) {
    CommonConfig config;
    EXPECT_EQ(config.threads, 0u);
    config.resolve_defaults("test");
    EXPECT_EQ(config.threads, std::min(usable_cpus(), 64u));
    CommonConfig fixed;
    fixed.threads = 3;
    fixed.resolve_defaults("test");
    EXPECT_EQ(fixed.threads, 3u);
}

}  // namespace
}  // namespace calcmesh
