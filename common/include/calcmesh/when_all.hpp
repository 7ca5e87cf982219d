#pragma once

#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <vector>

#include "calcmesh/asio.hpp"

namespace calcmesh {

/// Runs every task concurrently on the current executor and returns their results in order.
/// Tasks must not throw: they report failure in their value (e.g. a `Result`).
template <class T>
Task<std::vector<T>> when_all(std::vector<Task<T>> tasks) {
    struct State {
        explicit State(const net::any_io_executor& executor, std::size_t count)
            : results(count), remaining(count), timer(executor) {}
        std::vector<std::optional<T>> results;
        std::size_t remaining;
        net::steady_timer timer;
    };
    auto executor = co_await net::this_coro::executor;
    auto state = std::make_shared<State>(executor, tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i) {
        net::co_spawn(executor, std::move(tasks[i]),
                      [state, i](const std::exception_ptr& error, T value) {
                          if (error) {
                              std::terminate();  // tasks report failures as values
                          }
                          state->results[i] = std::move(value);
                          if (--state->remaining == 0) {
                              state->timer.cancel();
                          }
                      });
    }
    if (state->remaining > 0) {
        state->timer.expires_at(std::chrono::steady_clock::time_point::max());
        boost::system::error_code ignored;
        co_await state->timer.async_wait(net::redirect_error(net::use_awaitable, ignored));
    }
    std::vector<T> results;
    results.reserve(tasks.size());
    for (auto& result : state->results) {
        results.push_back(std::move(*result));
    }
    co_return results;
}

}  // namespace calcmesh
