#include "calcmesh/service.hpp"

#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <thread>

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

/// Asks, from a coroutine on every loop, which loop it is and for its HTTP client, then
/// stops the runtime as SIGTERM does.
class LoopProbe final : public Application {
  public:
    explicit LoopProbe(Runtime& runtime) : runtime_(runtime) {}
    void add_routes(Router& /*router*/) override {}
    void start() override {
        for (std::size_t loop = 0; loop < runtime_.loop_count(); ++loop) {
            net::co_spawn(runtime_.loop_executor(loop), probe(loop), net::detached);
        }
    }

    std::mutex mutex;
    std::vector<std::pair<std::size_t, std::optional<std::size_t>>> seen;  // asked on, answer
    std::set<const HttpClient*> clients;

  private:
    Task<void> probe(std::size_t loop) {
        {
            std::lock_guard lock(mutex);
            seen.emplace_back(loop, runtime_.current_loop());
            clients.insert(&runtime_.client());
        }
        if (++probed_ == runtime_.loop_count()) {
            ::kill(::getpid(), SIGTERM);
        }
        co_return;
    }

    Runtime& runtime_;
    std::atomic<std::size_t> probed_{0};
};

TEST(Runtime, EachLoopHasItsOwnClientAndOffTheLoopsAskingForOneFails) {
    CommonConfig config;
    config.threads = 3;
    config.access_log = false;
    config.resolve_defaults("test");
    Runtime runtime("test", config);
    LoopProbe probe(runtime);
    // Before the loops run, and on a thread of its own, no caller is on a loop.
    EXPECT_FALSE(runtime.current_loop());
    EXPECT_THROW(runtime.client(), std::logic_error);
    EXPECT_EQ(runtime.run(probe), 0);

    std::sort(probe.seen.begin(), probe.seen.end());
    ASSERT_EQ(probe.seen.size(), 3u);
    for (std::size_t loop = 0; loop < 3; ++loop) {
        EXPECT_EQ(probe.seen[loop].first, loop);
        EXPECT_EQ(probe.seen[loop].second, loop);
    }
    EXPECT_EQ(probe.clients.size(), 3u);
    // The main thread ran the first loop; once it returned it is off the loops again.
    EXPECT_FALSE(runtime.current_loop());
    EXPECT_THROW(runtime.client(), std::logic_error);
    bool thrown_on_other_thread = false;
    std::thread([&] {
        try {
            runtime.client();
        } catch (const std::logic_error&) {
            thrown_on_other_thread = true;
        }
    }).join();
    EXPECT_TRUE(thrown_on_other_thread);
}

}  // namespace
}  // namespace calcmesh
