#pragma once

#include <chrono>
#include <memory>
#include <optional>

#include "calcmesh/asio.hpp"

namespace calcmesh {

/// A value handed over once, from any thread, to one coroutine that waits for it on a
/// single-threaded io_context. Create it with `std::make_shared`.
///
/// `deliver` posts to the waiter's executor, so the value and the wake-up arrive together and
/// a delivery that happens before the wait starts is not lost. Later deliveries are ignored.
template <class T>
class AsyncEvent : public std::enable_shared_from_this<AsyncEvent<T>> {
  public:
    explicit AsyncEvent(const net::any_io_executor& executor) : timer_(executor) {}

    /// Thread-safe. Wakes the waiter, if any.
    void deliver(T value) {
        net::post(timer_.get_executor(),
                  [self = this->shared_from_this(), value = std::move(value)]() mutable {
                      if (!self->value_) {
                          self->value_ = std::move(value);
                          self->timer_.cancel();
                      }
                  });
    }

    /// Waits on the executor given at construction until the value arrives or `deadline`
    /// passes; returns the value, or nothing on timeout.
    Task<std::optional<T>> wait_until(std::chrono::steady_clock::time_point deadline) {
        if (!value_) {
            timer_.expires_at(deadline);
            boost::system::error_code ignored;
            co_await timer_.async_wait(net::redirect_error(net::use_awaitable, ignored));
        }
        co_return value_;
    }

  private:
    net::steady_timer timer_;
    std::optional<T> value_;
};

}  // namespace calcmesh
