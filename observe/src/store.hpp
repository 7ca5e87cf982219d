#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <variant>
#include <vector>

#include "filter.hpp"
#include "flow.hpp"
#include "service_map.hpp"

namespace calcmesh::observe {

/// What the collector keeps: the most recent flows and losses (a bounded buffer, as Hubble's
/// ring), and the service map and counters over everything since it started. Thread-safe.
class FlowStore {
  public:
    using Event = std::variant<Flow, LostEvents>;

    struct Entry {
        std::uint64_t sequence;
        Event event;
    };

    FlowStore(std::size_t capacity, ServiceMap map);

    void add(Flow flow);
    void add(LostEvents lost);

    /// The last `count` entries that match (losses always match), oldest first, and the
    /// sequence number to follow from.
    std::pair<std::vector<Entry>, std::uint64_t> last(const FlowFilter& filter,
                                                      std::size_t count) const;

    /// What a follower gets: the entries after `from` that match, the next sequence number, and
    /// how many entries left the buffer before the follower could read them.
    struct Batch {
        std::vector<Entry> entries;
        std::uint64_t next = 0;
        std::uint64_t missed = 0;
    };
    /// Waits up to `timeout` for entries after `from`.
    Batch after(std::uint64_t from, const FlowFilter& filter,
                std::chrono::milliseconds timeout) const;

    ServiceMap service_map() const;

    struct Status {
        std::uint64_t seen = 0;  ///< flows since the collector started
        std::size_t stored = 0;
        std::size_t capacity = 0;
        std::uint64_t lost = 0;  ///< events lost in the ring buffers
    };
    Status status() const;

  private:
    void push(Event event);

    const std::size_t capacity_;
    mutable std::mutex mutex_;
    mutable std::condition_variable added_;
    std::deque<Entry> entries_;
    std::uint64_t next_ = 1;
    std::uint64_t seen_ = 0;
    std::uint64_t lost_ = 0;
    ServiceMap map_;
};

}  // namespace calcmesh::observe
