#pragma once

#include <cstdint>
#include <deque>
#include <vector>

namespace calcmesh::log_collector {

/// Where the records of each job start in the log file, by a 64-bit hash of the job id, for
/// the most recent records only: memory stays bounded however long log_collector runs, and a
/// lookup of older records scans the file from where the index starts (`indexed_from`).
///
/// 16 bytes a record, in a sorted array and a short unsorted tail of the records added last,
/// merged in place into the array whenever it fills. A hash map with a node per record took
/// about 56 bytes a record, and an index of every record grew without end: log_collector
/// reached 142 MiB at the peak of bench/report with one of 16 bytes a record that kept them all.
/// Offsets must be added in increasing order, as the file grows. Not thread-safe: the store
/// guards it.
class JobIndex {
  public:
    /// Records added between two merges; also the step in which old records are dropped.
    static constexpr std::size_t kBlockRecords = 64 * 1024;
    /// 16 MiB of entries: the last million records, minutes of log_collector's peak rate.
    static constexpr std::size_t kDefaultIndexedRecords = 1024 * 1024;

    /// Keeps about the last `indexed_records` records (at least one block).
    explicit JobIndex(std::size_t indexed_records = kDefaultIndexedRecords);

    void add(std::uint64_t job_hash, std::uint64_t offset);
    /// The offsets of a job's records in [max(from, indexed_from()), to), oldest first; a hash
    /// collision adds an offset of another job, which the reader then drops.
    std::vector<std::uint64_t> find(std::uint64_t job_hash, std::uint64_t from,
                                    std::uint64_t to) const;
    /// The offset from which every record is indexed; records before it are to be scanned.
    std::uint64_t indexed_from() const { return indexed_from_; }
    std::size_t size() const { return sorted_.size() + tail_.size(); }

  private:
    struct Entry {
        std::uint64_t job_hash;
        std::uint64_t offset;
        friend bool operator<(const Entry& a, const Entry& b) {
            return a.job_hash != b.job_hash ? a.job_hash < b.job_hash : a.offset < b.offset;
        }
    };
    void merge_tail();

    std::size_t indexed_records_;
    std::vector<Entry> sorted_;  ///< its capacity reserved once: merges never reallocate it
    std::vector<Entry> tail_;    ///< in the order added; at most kBlockRecords
    std::deque<std::uint64_t> block_starts_;  ///< first offset of each block in sorted_
    std::uint64_t indexed_from_ = 0;
};

}  // namespace calcmesh::log_collector
