#pragma once

#include <chrono>
#include <deque>
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
/// for its log. Records wait in a bounded in-memory queue and go out in batches
/// (`POST /save_log` with a JSON array); a failed batch is retried with exponential backoff,
/// so a short log_collector outage loses nothing. When the queue is full, new records are
/// dropped, counted and logged.
class LogShipper {
  public:
    struct Options {
        Url collector;
        std::size_t capacity = 10'000;
        std::size_t batch_size = 256;
        /// How long a record may wait for others to share its request (unless the batch is
        /// full first).
        std::chrono::milliseconds linger{10};
        std::chrono::milliseconds request_timeout{5'000};
        std::chrono::milliseconds initial_backoff{100};
        std::chrono::milliseconds max_backoff{5'000};
    };

    LogShipper(Runtime& runtime, Options options);

    /// Queues a record without blocking. Thread-safe. Returns false if it was dropped.
    bool enqueue(const LogRecord& record);
    /// Starts sending, on the runtime's first loop.
    void start();
    /// Sends what is queued until `deadline`, then stops. Runs on the first loop.
    Task<void> flush(std::chrono::steady_clock::time_point deadline);

    std::size_t queued() const;
    /// Whether the last attempt to reach log_collector succeeded.
    bool collector_reachable() const { return reachable_.load(); }

  private:
    Task<void> run();
    Task<bool> send_batch(std::chrono::milliseconds timeout);
    void note_drop(const LogRecord& record);

    Runtime& runtime_;
    Options options_;
    net::steady_timer wakeup_;
    mutable std::mutex mutex_;
    struct Queued {
        std::string json;
        std::chrono::steady_clock::time_point queued_at;
    };
    std::deque<Queued> queue_;  // oldest first
    bool sender_waiting_ = false;
    bool stopping_ = false;
    std::chrono::steady_clock::time_point flush_deadline_{};
    std::shared_ptr<AsyncEvent<bool>> finished_;
    std::atomic<bool> reachable_{true};
    std::chrono::steady_clock::time_point last_drop_log_{};
    std::uint64_t drops_since_log_ = 0;
    Counter& shipped_;
    Counter& dropped_;
    Counter& failures_;
};

}  // namespace calcmesh::worker
