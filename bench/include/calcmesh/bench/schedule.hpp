#pragma once

#include <chrono>
#include <cstdint>

namespace calcmesh::bench {

/// The intended send times of an open-loop run: a constant arrival rate shared by `lanes`
/// (one per client thread), lane `lane` taking every `lanes`-th slot. Latency is measured from
/// these times, not from when a request actually left, so a stall of the system (or of the
/// client) shows in the figures instead of silently slowing the arrivals down: no coordinated
/// omission.
class OpenLoopSchedule {
  public:
    using Clock = std::chrono::steady_clock;

    /// `rate` requests per second in total, from `start` on.
    OpenLoopSchedule(double rate, Clock::time_point start, unsigned lane = 0, unsigned lanes = 1);

    /// When this lane's request number `index` (0, 1, ...) is due.
    Clock::time_point intended(std::uint64_t index) const;
    /// How many of this lane's requests are due before `time`.
    std::uint64_t due_before(Clock::time_point time) const;

  private:
    double interval_ns_;  // between two slots of all lanes
    Clock::time_point start_;
    unsigned lane_;
    unsigned lanes_;
};

}  // namespace calcmesh::bench
