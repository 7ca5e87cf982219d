#pragma once

#include <cstdint>
#include <vector>

namespace calcmesh::log_collector {

/// Where the records of each job start in the log file, by a 64-bit hash of the job id.
///
/// 16 bytes a record, in a sorted array and a short unsorted tail of the records added last,
/// sorted into the array whenever it fills. A hash map with a node per record took about 56 bytes
/// a record (node, pointer, bucket, allocator header), which made the index, not the records,
/// what log_collector's memory grew with: 86 MiB at the peak of bench/report.
/// Not thread-safe: the store guards it.
class JobIndex {
  public:
    void add(std::uint64_t job_hash, std::uint64_t offset);
    /// The offsets of a job's records in [from, to), oldest first; a hash collision adds an
    /// offset of another job, which the reader then drops.
    std::vector<std::uint64_t> find(std::uint64_t job_hash, std::uint64_t from,
                                    std::uint64_t to) const;
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

    std::vector<Entry> sorted_;
    std::vector<Entry> tail_;  ///< in the order added; at most kTailLimit
};

}  // namespace calcmesh::log_collector
