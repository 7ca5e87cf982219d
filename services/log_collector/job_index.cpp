#include "job_index.hpp"

#include <algorithm>

namespace calcmesh::log_collector {

namespace {

// Large enough that merging, which copies the main array, is rare (once per 64 Ki records:
// about 250 bytes copied a record at a million records); small enough that a lookup's scan of
// the unsorted tail stays short (1 MiB).
constexpr std::size_t kTailLimit = 64 * 1024;

}  // namespace

void JobIndex::add(std::uint64_t job_hash, std::uint64_t offset) {
    tail_.push_back({job_hash, offset});
    if (tail_.size() >= kTailLimit) {
        merge_tail();
    }
}

void JobIndex::merge_tail() {
    std::sort(tail_.begin(), tail_.end());
    // Into an array of the exact size: the index holds no spare capacity.
    std::vector<Entry> merged;
    merged.reserve(sorted_.size() + tail_.size());
    std::merge(sorted_.begin(), sorted_.end(), tail_.begin(), tail_.end(),
               std::back_inserter(merged));
    sorted_ = std::move(merged);
    tail_.clear();
}

std::vector<std::uint64_t> JobIndex::find(std::uint64_t job_hash, std::uint64_t from,
                                          std::uint64_t to) const {
    std::vector<std::uint64_t> offsets;
    auto it = std::lower_bound(sorted_.begin(), sorted_.end(), Entry{job_hash, from});
    for (; it != sorted_.end() && it->job_hash == job_hash && it->offset < to; ++it) {
        offsets.push_back(it->offset);
    }
    for (const auto& entry : tail_) {
        if (entry.job_hash == job_hash && entry.offset >= from && entry.offset < to) {
            offsets.push_back(entry.offset);
        }
    }
    std::sort(offsets.begin(), offsets.end());
    return offsets;
}

}  // namespace calcmesh::log_collector
