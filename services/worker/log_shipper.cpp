#include "log_shipper.hpp"

#include <spdlog/spdlog.h>

namespace calcmesh::worker {

LogShipper::LogShipper(Runtime& runtime, Options options)
    : runtime_(runtime),
      options_(std::move(options)),
      wakeup_(runtime.executor()),
      finished_(std::make_shared<AsyncEvent<bool>>(runtime.executor())),
      shipped_(runtime.metrics().counter("calcmesh_log_records_shipped_total",
                                         "Log records acknowledged by log_collector.")),
      dropped_(runtime.metrics().counter("calcmesh_log_records_dropped_total",
                                         "Log records that log_collector refused for good (4xx).")),
      failures_(runtime.metrics().counter(
          "calcmesh_log_ship_failures_total",
          "Attempts to send a batch of log records that failed and will be retried.")) {
    runtime.metrics().gauge("calcmesh_log_queue_depth", "Log records waiting to be sent.",
                            [this] { return static_cast<double>(queued()); });
}

void LogShipper::enqueue(const LogRecord& record, Settled settled) {
    std::string line = log_line(record);
    bool wake = false;
    {
        std::lock_guard lock(mutex_);
        queue_.push_back({std::move(line), std::chrono::steady_clock::now(), std::move(settled)});
        queued_ = queue_.size();
        // The sender sleeps while the queue is empty, and while a batch is not yet full.
        wake = sender_waiting_ && (queue_.size() == 1 || queue_.size() >= options_.batch_size);
        if (wake) {
            sender_waiting_ = false;
        }
    }
    if (wake) {
        net::post(wakeup_.get_executor(), [this] { wakeup_.cancel(); });
    }
}

bool LogShipper::has_room() const {
    return queued_.load(std::memory_order_relaxed) < options_.capacity;
}

void LogShipper::settle(std::size_t count) {
    std::vector<Settled> callbacks;
    {
        std::lock_guard lock(mutex_);
        const auto end = queue_.begin() + static_cast<std::ptrdiff_t>(count);
        for (auto it = queue_.begin(); it != end; ++it) {
            if (it->settled) {
                callbacks.push_back(std::move(it->settled));
            }
        }
        queue_.erase(queue_.begin(), end);
        queued_ = queue_.size();
    }
    for (const auto& settled : callbacks) {
        settled();
    }
}

void LogShipper::start() {
    net::co_spawn(runtime_.executor(), run(), net::detached);
}

Task<bool> LogShipper::send_batch(std::chrono::milliseconds timeout) {
    // A batch stays under log_collector's body limit (64 KiB) whatever the records' size.
    constexpr std::size_t kMaxBody = 60 * 1024;
    std::string body = "[";
    std::size_t count = 0;
    {
        std::lock_guard lock(mutex_);
        while (count < queue_.size() && count < options_.batch_size &&
               (count == 0 || body.size() + queue_[count].json.size() + 2 < kMaxBody)) {
            body += (count ? "," : "") + queue_[count].json;
            ++count;
        }
    }
    body += "]";
    auto response = co_await runtime_.client().send(http::verb::post, options_.collector,
                                                    "/save_log", std::move(body),
                                                    "application/json", timeout, "log_collector");
    if (response && response.value().status == 201) {
        settle(count);
        shipped_.add(count);
        reachable_ = true;
        co_return true;
    }
    failures_.add();
    reachable_ = false;
    if (response && response.value().status >= 400 && response.value().status < 500) {
        // The collector refuses these records for good: retrying would block the queue forever.
        spdlog::error("event=log_batch_rejected records={} status={} body=\"{}\"", count,
                      response.value().status, response.value().body);
        settle(count);
        dropped_.add(count);
        co_return false;
    }
    spdlog::warn(
        "event=log_batch_failed records={} error=\"{}\"", count,
        response ? "status " + std::to_string(response.value().status) : response.error().message);
    co_return false;
}

Task<void> LogShipper::run() {
    auto backoff = options_.initial_backoff;
    boost::system::error_code ignored;
    for (;;) {
        std::size_t pending = 0;
        bool stopping = false;
        std::chrono::steady_clock::time_point deadline;
        std::chrono::steady_clock::time_point send_at;
        {
            std::lock_guard lock(mutex_);
            pending = queue_.size();
            stopping = stopping_;
            deadline = flush_deadline_;
            // A batch goes out when it is full or when its oldest record has waited `linger`:
            // one request (and one fdatasync at log_collector) for many records, not one each.
            if (pending == 0) {
                send_at = std::chrono::steady_clock::time_point::max();
            } else if (pending >= options_.batch_size || stopping) {
                send_at = std::chrono::steady_clock::time_point::min();
            } else {
                send_at = queue_.front().queued_at + options_.linger;
            }
            sender_waiting_ = !stopping && send_at > std::chrono::steady_clock::now();
        }
        const auto now = std::chrono::steady_clock::now();
        if (stopping && (pending == 0 || now >= deadline)) {
            break;
        }
        if (send_at > now) {
            // enqueue() (first record, or a full batch) or flush() cancels this wait.
            wakeup_.expires_at(send_at);
            co_await wakeup_.async_wait(net::redirect_error(net::use_awaitable, ignored));
            continue;
        }
        auto timeout = options_.request_timeout;
        if (stopping) {
            timeout = std::min(
                timeout, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now) +
                             std::chrono::milliseconds(1));
        }
        if (co_await send_batch(timeout)) {
            backoff = options_.initial_backoff;
            continue;
        }
        wakeup_.expires_after(stopping ? std::chrono::milliseconds(50) : backoff);
        co_await wakeup_.async_wait(net::redirect_error(net::use_awaitable, ignored));
        backoff = std::min(backoff * 2, options_.max_backoff);
    }
    if (const auto left = queued(); left > 0) {
        spdlog::error("event=log_records_lost_at_shutdown records={}", left);
    }
    finished_->deliver(true);
}

Task<void> LogShipper::flush(std::chrono::steady_clock::time_point deadline) {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
        flush_deadline_ = deadline;
    }
    wakeup_.cancel();
    co_await finished_->wait_until(deadline + options_.request_timeout);
}

}  // namespace calcmesh::worker
