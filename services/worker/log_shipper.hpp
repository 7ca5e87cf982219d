#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "calcmesh/asio.hpp"
#include "calcmesh/http.hpp"
#include "calcmesh/job.hpp"
#include "calcmesh/metrics.hpp"
#include "calcmesh/service.hpp"

namespace calcmesh::worker {

/// Sends log records to log_collector in the background, so that a computation never waits
/// for its log. Records wait in an in-memory queue and go out in batches (`POST /save_log`
/// with a JSON array); a failed batch is retried with exponential backoff, so an outage of
/// log_collector loses nothing. The queue is bounded by backpressure, never by dropping: its
/// owner asks `has_room` before taking work that will make a record, and refuses the work
/// when there is none.
///
/// Each event loop has a sender of its own, with its own queue and its loop's HTTP client: a
/// record made on a loop is queued and sent there, without crossing threads. The capacity
/// bounds the records of all queues together.
class LogShipper {
  public:
    struct Options {
        Url collector;
        /// Records queued (in all queues) before `has_room` turns false. The owner checks it
        /// before a job and queues the record after, so concurrent jobs may pass it by one each.
        std::size_t capacity = 10'000;
        std::size_t batch_size = 256;
        /// How long a record may wait for others to share its request (unless the batch is
        /// full first).
        std::chrono::milliseconds linger{10};
        std::chrono::milliseconds request_timeout{5'000};
        std::chrono::milliseconds initial_backoff{100};
        /// Short, because a worker whose queue is full refuses work until a batch goes.
        std::chrono::milliseconds max_backoff{1'000};
    };

    LogShipper(Runtime& runtime, Options options);
    ~LogShipper();

    /// Runs on the loop of the record's sender once log_collector has acknowledged the record
    /// (it is on disk), or has refused it for good. The records of one sender are settled in
    /// the order they were queued.
    using Settled = std::function<void()>;

    /// Queues a record without blocking. Thread-safe: on a loop the record goes to that loop's
    /// sender; from another thread (the Kafka consumer's) to each sender in turn.
    void enqueue(const LogRecord& record, Settled settled = {});
    /// Whether the queues hold fewer than `capacity` records. Thread-safe, lock-free.
    bool has_room() const;
    /// Starts sending, each sender on its loop.
    void start();
    /// Sends what is queued until `deadline`, then stops. Runs on the first loop.
    Task<void> flush(std::chrono::steady_clock::time_point deadline);

    std::size_t queued() const { return queued_.load(std::memory_order_relaxed); }
    /// Whether the last attempt to reach log_collector succeeded.
    bool collector_reachable() const { return reachable_.load(); }

  private:
    class Sender;

    Runtime& runtime_;
    Options options_;
    std::vector<std::unique_ptr<Sender>> senders_;  ///< one per loop, by loop index
    /// The sender of the next record queued off the loops.
    std::atomic<std::size_t> next_sender_{0};
    /// Records in all queues, readable without a lock: every job asks `has_room`.
    std::atomic<std::size_t> queued_{0};
    std::atomic<bool> reachable_{true};
    Counter& shipped_;
    Counter& dropped_;
    Counter& failures_;
};

}  // namespace calcmesh::worker
