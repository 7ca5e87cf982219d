#include "job_index.hpp"

#include <algorithm>

namespace calcmesh::log_collector {

JobIndex::JobIndex(std::size_t indexed_records)
    : indexed_records_(std::max(indexed_records, kBlockRecords)) {
    // Address space only: pages are touched, and counted in RSS, as entries fill them.
    sorted_.reserve(indexed_records_ + kBlockRecords);
    tail_.reserve(kBlockRecords);
}

void JobIndex::add(std::uint64_t job_hash, std::uint64_t offset) {
    tail_.push_back({job_hash, offset});
    if (tail_.size() >= kBlockRecords) {
        merge_tail();
    }
}

void JobIndex::merge_tail() {
    block_starts_.push_back(tail_.front().offset);
    std::sort(tail_.begin(), tail_.end());
    // In place: the merge buffers only the tail, never a second copy of the array.
    const auto middle = static_cast<std::ptrdiff_t>(sorted_.size());
    sorted_.insert(sorted_.end(), tail_.begin(), tail_.end());
    std::inplace_merge(sorted_.begin(), sorted_.begin() + middle, sorted_.end());
    tail_.clear();
    if (sorted_.size() > indexed_records_ && block_starts_.size() > 1) {
        block_starts_.pop_front();
        indexed_from_ = block_starts_.front();
        std::erase_if(sorted_, [this](const Entry& entry) { return entry.offset < indexed_from_; });
    }
}

std::vector<std::uint64_t> JobIndex::find(std::uint64_t job_hash, std::uint64_t from,
                                          std::uint64_t to) const {
    from = std::max(from, indexed_from_);
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
