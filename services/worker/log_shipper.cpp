#include "log_shipper.hpp"

#include <spdlog/spdlog.h>

#include <deque>
#include <mutex>

#include "calcmesh/async_event.hpp"

namespace calcmesh::worker {

/// The queue and the sending coroutine of one loop. Its timer and its HTTP client are used on
/// that loop only; `enqueue` and `stop` may come from any thread.
class LogShipper::Sender {
  public:
    /// `first_loop` is where `flush` waits for the sender to finish.
    Sender(LogShipper& shipper, const net::any_io_executor& loop,
           const net::any_io_executor& first_loop)
        : shipper_(shipper),
          wakeup_(loop),
          finished_(std::make_shared<AsyncEvent<bool>>(first_loop)) {}

    void enqueue(std::string line, Settled settled);
    /// Starts the sending coroutine on its loop.
    void start() { net::co_spawn(wakeup_.get_executor(), run(), net::detached); }
    /// Sends what is queued until `deadline`, then ends.
    void stop(std::chrono::steady_clock::time_point deadline);
    /// Waits on the first loop until the sender has ended, or `deadline` passes.
    Task<void> finished(std::chrono::steady_clock::time_point deadline) {
        co_await finished_->wait_until(deadline);
    }

  private:
    struct Queued {
        std::string json;
        std::chrono::steady_clock::time_point queued_at;
        Settled settled;
    };

    Task<void> run();
    Task<bool> send_batch(std::chrono::milliseconds timeout);
    /// Takes the first `count` records off the queue and runs their callbacks.
    void settle(std::size_t count);
    /// Cancels the sender's wait, on its loop.
    void wake() {
        net::post(wakeup_.get_executor(), [this] { wakeup_.cancel(); });
    }

    LogShipper& shipper_;
    net::steady_timer wakeup_;
    std::mutex mutex_;
    std::deque<Queued> queue_;  // oldest first
    bool sender_waiting_ = false;
    bool stopping_ = false;
    std::chrono::steady_clock::time_point flush_deadline_{};
    std::shared_ptr<AsyncEvent<bool>> finished_;
};

void LogShipper::Sender::enqueue(std::string line, Settled settled) {
    const auto& options = shipper_.options_;
    bool wake_sender = false;
    {
        std::lock_guard lock(mutex_);
        queue_.push_back({std::move(line), std::chrono::steady_clock::now(), std::move(settled)});
        ++shipper_.queued_;
        // The sender sleeps while the queue is empty, and while a batch is not yet full.
        wake_sender =
            sender_waiting_ && (queue_.size() == 1 || queue_.size() >= options.batch_size);
        if (wake_sender) {
            sender_waiting_ = false;
        }
    }
    if (wake_sender) {
        wake();
    }
}

void LogShipper::Sender::stop(std::chrono::steady_clock::time_point deadline) {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
        flush_deadline_ = deadline;
    }
    wake();
}

void LogShipper::Sender::settle(std::size_t count) {
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
        shipper_.queued_ -= count;
    }
    for (const auto& settled : callbacks) {
        settled();
    }
}

Task<bool> LogShipper::Sender::send_batch(std::chrono::milliseconds timeout) {
    const auto& options = shipper_.options_;
    // A batch stays under log_collector's body limit (64 KiB) whatever the records' size.
    constexpr std::size_t kMaxBody = 60 * 1024;
    std::string body = "[";
    std::size_t count = 0;
    {
        std::lock_guard lock(mutex_);
        while (count < queue_.size() && count < options.batch_size &&
               (count == 0 || body.size() + queue_[count].json.size() + 2 < kMaxBody)) {
            body += (count ? "," : "") + queue_[count].json;
            ++count;
        }
    }
    body += "]";
    // This coroutine runs on the sender's loop: the client is that loop's.
    auto response = co_await shipper_.runtime_.client().send(
        http::verb::post, options.collector, "/save_log", std::move(body), "application/json",
        timeout, "log_collector");
    if (response && response.value().status == 201) {
        settle(count);
        shipper_.shipped_.add(count);
        shipper_.reachable_ = true;
        co_return true;
    }
    shipper_.failures_.add();
    shipper_.reachable_ = false;
    if (response && response.value().status >= 400 && response.value().status < 500) {
        // The collector refuses these records for good: retrying would block the queue forever.
        spdlog::error("event=log_batch_rejected records={} status={} body=\"{}\"", count,
                      response.value().status, response.value().body);
        settle(count);
        shipper_.dropped_.add(count);
        co_return false;
    }
    spdlog::warn(
        "event=log_batch_failed records={} error=\"{}\"", count,
        response ? "status " + std::to_string(response.value().status) : response.error().message);
    co_return false;
}

Task<void> LogShipper::Sender::run() {
    const auto& options = shipper_.options_;
    auto backoff = options.initial_backoff;
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
            } else if (pending >= options.batch_size || stopping) {
                send_at = std::chrono::steady_clock::time_point::min();
            } else {
                send_at = queue_.front().queued_at + options.linger;
            }
            sender_waiting_ = !stopping && send_at > std::chrono::steady_clock::now();
        }
        const auto now = std::chrono::steady_clock::now();
        if (stopping && (pending == 0 || now >= deadline)) {
            break;
        }
        if (send_at > now) {
            // enqueue() (first record, or a full batch) or stop() cancels this wait.
            wakeup_.expires_at(send_at);
            co_await wakeup_.async_wait(net::redirect_error(net::use_awaitable, ignored));
            continue;
        }
        auto timeout = options.request_timeout;
        if (stopping) {
            timeout = std::min(
                timeout, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now) +
                             std::chrono::milliseconds(1));
        }
        if (co_await send_batch(timeout)) {
            backoff = options.initial_backoff;
            continue;
        }
        wakeup_.expires_after(stopping ? std::chrono::milliseconds(50) : backoff);
        co_await wakeup_.async_wait(net::redirect_error(net::use_awaitable, ignored));
        backoff = std::min(backoff * 2, options.max_backoff);
    }
    std::size_t left = 0;
    {
        std::lock_guard lock(mutex_);
        left = queue_.size();
    }
    if (left > 0) {
        spdlog::error("event=log_records_lost_at_shutdown records={}", left);
    }
    finished_->deliver(true);
}

LogShipper::LogShipper(Runtime& runtime, Options options)
    : runtime_(runtime),
      options_(std::move(options)),
      shipped_(runtime.metrics().counter("calcmesh_log_records_shipped_total",
                                         "Log records acknowledged by log_collector.")),
      dropped_(runtime.metrics().counter("calcmesh_log_records_dropped_total",
                                         "Log records that log_collector refused for good (4xx).")),
      failures_(runtime.metrics().counter(
          "calcmesh_log_ship_failures_total",
          "Attempts to send a batch of log records that failed and will be retried.")) {
    for (std::size_t loop = 0; loop < runtime.loop_count(); ++loop) {
        senders_.push_back(
            std::make_unique<Sender>(*this, runtime.loop_executor(loop), runtime.executor()));
    }
    runtime.metrics().gauge("calcmesh_log_queue_depth", "Log records waiting to be sent.",
                            [this] { return static_cast<double>(queued()); });
}

LogShipper::~LogShipper() = default;

void LogShipper::enqueue(const LogRecord& record, Settled settled) {
    const auto loop = runtime_.current_loop();
    const auto sender = loop ? *loop : next_sender_.fetch_add(1) % senders_.size();
    senders_[sender]->enqueue(log_line(record), std::move(settled));
}

bool LogShipper::has_room() const {
    return queued_.load(std::memory_order_relaxed) < options_.capacity;
}

void LogShipper::start() {
    for (auto& sender : senders_) {
        sender->start();
    }
}

Task<void> LogShipper::flush(std::chrono::steady_clock::time_point deadline) {
    for (auto& sender : senders_) {
        sender->stop(deadline);
    }
    for (auto& sender : senders_) {
        co_await sender->finished(deadline + options_.request_timeout);
    }
}

}  // namespace calcmesh::worker
