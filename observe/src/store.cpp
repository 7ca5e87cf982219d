#include "store.hpp"

#include <algorithm>

namespace calcmesh::observe {

namespace {

bool matches(const FlowFilter& filter, const FlowStore::Event& event) {
    const auto* flow = std::get_if<Flow>(&event);
    return flow == nullptr || filter.matches(*flow);
}

}  // namespace

FlowStore::FlowStore(std::size_t capacity, ServiceMap map)
    : capacity_(capacity), map_(std::move(map)) {}

void FlowStore::add(Flow flow) {
    std::lock_guard lock(mutex_);
    ++seen_;
    map_.add(flow);
    push(std::move(flow));
}

void FlowStore::add(LostEvents lost) {
    std::lock_guard lock(mutex_);
    lost_ += lost.count;
    push(std::move(lost));
}

void FlowStore::push(Event event) {
    entries_.push_back({next_++, std::move(event)});
    if (entries_.size() > capacity_) {
        entries_.pop_front();
    }
    added_.notify_all();
}

std::pair<std::vector<FlowStore::Entry>, std::uint64_t> FlowStore::last(const FlowFilter& filter,
                                                                        std::size_t count) const {
    std::lock_guard lock(mutex_);
    std::vector<Entry> result;
    for (auto it = entries_.rbegin(); it != entries_.rend() && result.size() < count; ++it) {
        if (matches(filter, it->event)) {
            result.push_back(*it);
        }
    }
    std::reverse(result.begin(), result.end());
    return {std::move(result), next_};
}

FlowStore::Batch FlowStore::after(std::uint64_t from, const FlowFilter& filter,
                                  std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mutex_);
    added_.wait_for(lock, timeout, [&] { return next_ > from; });
    Batch batch;
    batch.next = next_;
    const auto oldest = entries_.empty() ? next_ : entries_.front().sequence;
    batch.missed = oldest > from ? oldest - from : 0;
    // Sequence numbers are contiguous, so the first entry to send is found by subtraction.
    for (auto i = from > oldest ? from - oldest : 0; i < entries_.size(); ++i) {
        if (matches(filter, entries_[i].event)) {
            batch.entries.push_back(entries_[i]);
        }
    }
    return batch;
}

ServiceMap FlowStore::service_map() const {
    std::lock_guard lock(mutex_);
    return map_;
}

FlowStore::Status FlowStore::status() const {
    std::lock_guard lock(mutex_);
    return {seen_, entries_.size(), capacity_, lost_};
}

}  // namespace calcmesh::observe
