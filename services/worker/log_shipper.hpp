#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <mutex>
#include <string>

#include "calcmesh/asio.hpp"
#include "calcmesh/async_event.hpp"
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
class LogShipper {
  public:
    struct Options {
        Url collector;
        /// Records queued before `has_room` turns false. The owner checks it before a job
        /// and queues the record after, so concurrent jobs may pass it by one each.
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

    /// Runs on the runtime's first loop once log_collector has acknowledged the record (it
    /// is on disk), or has refused it for good.
    using Settled = std::function<void()>;

    /// Queues a record without blocking. Thread-safe.
    void enqueue(const LogRecord& record, Settled settled = {});
    /// Whether the queue holds fewer than `capacity` records. Thread-safe, lock-free.
    bool has_room() const;
    /// Starts sending, on the runtime's first loop.
    void start();
    /// Sends what is queued until `deadline`, then stops. Runs on the first loop.
    Task<void> flush(std::chrono::steady_clock::time_point deadline);

    std::size_t queued() const { return queued_.load(std::memory_order_relaxed); }
    /// Whether the last attempt to reach log_collector succeeded.
    bool collector_reachable() const { return reachable_.load(); }

  private:
    Task<void> run();
    Task<bool> send_batch(std::chrono::milliseconds timeout);

    Runtime& runtime_;
    Options options_;
    net::steady_timer wakeup_;
    mutable std::mutex mutex_;
    struct Queued {
        std::string json;
        std::chrono::steady_clock::time_point queued_at;
        Settled settled;
    };
    /// Takes the first `count` records off the queue and runs their callbacks.
    void settle(std::size_t count);
    std::deque<Queued> queue_;  // oldest first
    /// queue_.size(), readable without the lock: every job asks `has_room`.
    std::atomic<std::size_t> queued_{0};
    bool sender_waiting_ = false;
    bool stopping_ = false;
    std::chrono::steady_clock::time_point flush_deadline_{};
    std::shared_ptr<AsyncEvent<bool>> finished_;
    std::atomic<bool> reachable_{true};
    Counter& shipped_;
    Counter& dropped_;
    Counter& failures_;
};

}  // namespace calcmesh::worker
