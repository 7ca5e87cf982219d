#pragma once

#include <chrono>
#include <string>

#include "calcmesh/http_client.hpp"

namespace calcmesh {

/// One HTTP request from code that is not a coroutine (command-line tools, tests): runs the
/// asynchronous client on a private io_context until the response or the deadline.
/// `url` is a full URL with the target, e.g. "http://127.0.0.1:8080/jobs/j-1".
Result<ClientResponse> blocking_http(http::verb method, const std::string& url,
                                     std::string body = {}, std::string content_type = {},
                                     std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace calcmesh
