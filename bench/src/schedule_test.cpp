#include "calcmesh/bench/schedule.hpp"

#include <gtest/gtest.h>

#include "calcmesh/bench/runner.hpp"

namespace calcmesh::bench {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(OpenLoopSchedule, SlotsFollowTheRateWithoutDrift) {
    const auto start = Clock::now();
    const OpenLoopSchedule schedule(3000, start);
    EXPECT_EQ(schedule.intended(0), start);
    // 3000/s is not a whole number of nanoseconds apart: the millionth slot is still exact.
    EXPECT_EQ(schedule.intended(3'000'000) - start, 1000s);
    EXPECT_EQ(schedule.intended(1) - start, 333'333ns);
    EXPECT_EQ(schedule.intended(2) - start, 666'667ns);
}

TEST(OpenLoopSchedule, LanesShareTheRateSlotBySlot) {
    const auto start = Clock::now();
    const OpenLoopSchedule one(1000, start);
    const OpenLoopSchedule lane0(1000, start, 0, 2);
    const OpenLoopSchedule lane1(1000, start, 1, 2);
    for (std::uint64_t i = 0; i < 1000; ++i) {
        EXPECT_EQ(lane0.intended(i), one.intended(2 * i));
        EXPECT_EQ(lane1.intended(i), one.intended(2 * i + 1));
    }
    EXPECT_EQ(lane0.due_before(start + 10ms), 5u);  // slots 0, 2, 4, 6, 8 ms
    EXPECT_EQ(lane1.due_before(start + 10ms), 5u);  // 1, 3, 5, 7, 9 ms
    EXPECT_EQ(lane1.due_before(start + 1ms), 0u);
    EXPECT_EQ(lane1.due_before(start + 1ms + 1ns), 1u);
    EXPECT_THROW(OpenLoopSchedule(0, start), std::invalid_argument);
    EXPECT_THROW(OpenLoopSchedule(10, start, 2, 2), std::invalid_argument);
}

/// A target that answers in 1 ms, except that nothing is answered during a stall: an answer
/// due in [stall_from, stall_to) comes at stall_to. Optionally answers wrong once.
class StallingTarget final : public Target {
  public:
    StallingTarget(Clock::duration stall_from, Clock::duration stall_to, std::uint64_t wrong_at = 0)
        : origin_(Clock::now()),
          stall_from_(stall_from),
          stall_to_(stall_to),
          wrong_at_(wrong_at) {}

    std::string describe() const override { return "stalling test target"; }
    nlohmann::json to_json() const override { return {{"kind", "stall"}}; }
    std::unique_ptr<TargetClient> client(net::any_io_executor executor,
                                         unsigned /*max_connections*/) override {
        return std::make_unique<Client>(std::move(executor), *this);
    }

  private:
    class Client final : public TargetClient {
      public:
        Client(net::any_io_executor executor, StallingTarget& target)
            : executor_(std::move(executor)), target_(target) {}
        Task<CallResult> call(std::uint64_t sequence) override {
            auto answer = Clock::now() + 1ms;
            if (answer >= target_.origin_ + target_.stall_from_ &&
                answer < target_.origin_ + target_.stall_to_) {
                answer = target_.origin_ + target_.stall_to_;
            }
            // Each call has a timer of its own: open-loop calls overlap.
            net::steady_timer timer(executor_);
            timer.expires_at(answer);
            co_await timer.async_wait(net::use_awaitable);
            if (target_.wrong_at_ != 0 && sequence == target_.wrong_at_) {
                co_return CallResult::wrong("wrong_result", "1 + 1 should give 2, got 3");
            }
            co_return CallResult::ok();
        }

      private:
        net::any_io_executor executor_;
        StallingTarget& target_;
    };

    Clock::time_point origin_;
    Clock::duration stall_from_;
    Clock::duration stall_to_;
    std::uint64_t wrong_at_;
};

TEST(OpenLoop, AStallShowsInTheLatencyOfEveryRequestDueDuringIt) {
    // 200 ms without answers in the middle of a 1 s run at 1000 requests/s.
    StallingTarget target(400ms, 600ms);
    LoadOptions options;
    options.rate = 1000;
    options.warmup = 0ms;
    options.duration = 1000ms;
    auto report = run_load(target, options);
    ASSERT_TRUE(report) << report.error().message;
    // The arrivals kept their pace through the stall...
    EXPECT_NEAR(static_cast<double>(report.value().ok), 1000, 20);
    // ...so the ~200 requests due during it waited up to 200 ms each, from their due time.
    EXPECT_GT(report.value().latency.percentile(90), 50ms);
    EXPECT_GT(report.value().latency.percentile(99), 150ms);
    EXPECT_LT(report.value().latency.percentile(50), 50ms);
}

TEST(ClosedLoop, TheSameStallHidesBehindCoordinatedOmission) {
    // The contrast that motivates the open loop: one request in flight sees the stall once.
    StallingTarget target(400ms, 600ms);
    LoadOptions options;
    options.concurrency = 1;
    options.warmup = 0ms;
    options.duration = 1000ms;
    auto report = run_load(target, options);
    ASSERT_TRUE(report) << report.error().message;
    EXPECT_LT(report.value().latency.percentile(99), 50ms);
    EXPECT_GT(report.value().latency.max(), 150ms);
}

TEST(Runner, RefusesARunWithOneWrongAnswer) {
    StallingTarget target(0ms, 0ms, 5);
    LoadOptions options;
    options.concurrency = 4;
    options.warmup = 0ms;
    options.duration = 200ms;
    auto report = run_load(target, options);
    ASSERT_FALSE(report);
    EXPECT_TRUE(refused(report.error()));
    EXPECT_NE(report.error().message.find("1 wrong answer"), std::string::npos)
        << report.error().message;
    EXPECT_NE(report.error().message.find("1 + 1 should give 2"), std::string::npos);
}

}  // namespace
}  // namespace calcmesh::bench
