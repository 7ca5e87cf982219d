#pragma once

// The Boost.Asio and Boost.Beast names every networked part of calcmesh uses.

// Boost 1.74 awaitable.hpp uses std::exchange without including <utility>.
// clang-format off
#include <utility>
// clang-format on
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace calcmesh {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

/// Every coroutine in calcmesh is an asio awaitable; operations pass `use_awaitable`
/// explicitly because Boost 1.74 has no default completion token.
template <class T>
using Task = net::awaitable<T>;

}  // namespace calcmesh
