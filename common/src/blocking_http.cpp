#include "calcmesh/blocking_http.hpp"

namespace calcmesh {

namespace {

// Returns an optional because co_spawn needs a default-constructible result type.
Task<std::optional<Result<ClientResponse>>> send(HttpClient& client, http::verb method, Url base,
                                                 std::string target, std::string body,
                                                 std::string content_type,
                                                 std::chrono::milliseconds timeout) {
    const auto name = base.host_port();
    co_return co_await client.send(method, std::move(base), std::move(target), std::move(body),
                                   std::move(content_type), timeout, name);
}

}  // namespace

Result<ClientResponse> blocking_http(http::verb method, const std::string& url, std::string body,
                                     std::string content_type, std::chrono::milliseconds timeout) {
    constexpr std::size_t kSchemeLength = 7;  // "http://"
    const auto slash = url.find('/', kSchemeLength);
    std::string target = slash == std::string::npos ? "/" : url.substr(slash);
    auto base = parse_url(url.substr(0, slash));
    if (!base) {
        return base.error();
    }
    net::io_context context;
    HttpClient client(context.get_executor());
    std::optional<Result<ClientResponse>> result;
    net::co_spawn(
        context,
        send(client, method, base.value(), std::move(target), std::move(body),
             std::move(content_type), timeout),
        [&result](const std::exception_ptr& error, std::optional<Result<ClientResponse>> response) {
            if (error) {
                std::rethrow_exception(error);
            }
            result = std::move(response);
        });
    context.run();
    return std::move(result).value();
}

}  // namespace calcmesh
