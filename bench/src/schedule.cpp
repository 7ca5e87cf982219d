#include "calcmesh/bench/schedule.hpp"

#include <cmath>
#include <stdexcept>

namespace calcmesh::bench {

OpenLoopSchedule::OpenLoopSchedule(double rate, Clock::time_point start, unsigned lane,
                                   unsigned lanes)
    : interval_ns_(1e9 / rate), start_(start), lane_(lane), lanes_(lanes) {
    if (!(rate > 0) || lanes == 0 || lane >= lanes) {
        throw std::invalid_argument("an open-loop schedule needs a positive rate and lane < lanes");
    }
}

OpenLoopSchedule::Clock::time_point OpenLoopSchedule::intended(std::uint64_t index) const {
    // Computed from the start each time, so rounding never accumulates into drift.
    const double slot = static_cast<double>(index) * lanes_ + lane_;
    return start_ +
           std::chrono::nanoseconds(static_cast<std::int64_t>(std::llround(slot * interval_ns_)));
}

std::uint64_t OpenLoopSchedule::due_before(Clock::time_point time) const {
    if (time <= start_) {
        return 0;
    }
    const double slots =
        std::chrono::duration<double, std::nano>(time - start_).count() / interval_ns_;
    // Slots lane, lane + lanes, ... strictly before `slots`.
    const double mine = std::ceil((slots - lane_) / lanes_);
    auto count = static_cast<std::uint64_t>(std::max(0.0, mine));
    while (count > 0 && intended(count - 1) >= time) {
        --count;
    }
    while (intended(count) < time) {
        ++count;
    }
    return count;
}

}  // namespace calcmesh::bench
