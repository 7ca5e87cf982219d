#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "calcmesh/asio.hpp"
#include "calcmesh/error.hpp"

namespace calcmesh {

/// Decoded `name=value` pairs of a query string or form body, in order.
using FormFields = std::vector<std::pair<std::string, std::string>>;

/// Decodes `application/x-www-form-urlencoded` text ('+' is a space, %XX an octet).
/// Fails with `invalid_field` on a malformed escape.
Result<FormFields> parse_form(std::string_view text);

/// Percent-encodes `text` for a URL query component.
std::string url_encode(std::string_view text);

/// One HTTP request as handlers see it.
struct Request {
    http::request<http::string_body> message;
    std::string path;  ///< the target without the query string
    FormFields query;  ///< decoded query parameters

    /// The first query parameter called `name`, if any.
    std::optional<std::string_view> query_param(std::string_view name) const;
    /// The media type of the body, lower case and without parameters ("application/json").
    std::string media_type() const;
};

using Response = http::response<http::string_body>;

Response json_response(unsigned status, const nlohmann::json& body);
/// An answer whose body is JSON text written already (see json_writer.hpp).
Response json_text_response(unsigned status, std::string body);
Response text_response(unsigned status, std::string body, std::string_view content_type);
/// The error JSON body with the status `http_status(error.code)`, and `Retry-After` when the
/// request was refused before any work.
Response error_response(const Error& error);
/// Adds `Retry-After` to an answer of that error when the request was refused before any work.
void add_retry_after(Response& response, ErrorCode code);

/// Appends `message` as it goes on the wire, through Beast's serializer: several messages
/// appended to one string go out in one write (pipelined requests, or their answers).
template <bool isRequest>
void append_wire(std::string& out, http::message<isRequest, http::string_body>& message);

/// Parses a request body as a JSON object, or fails with `invalid_json`.
Result<nlohmann::json> parse_json_object(std::string_view body);

/// An HTTP base URL such as "http://addition-worker:8091" or "http://127.0.0.1:8091/api".
struct Url {
    std::string host;
    std::string port;
    std::string base_path;  ///< no trailing '/'; empty for the root

    std::string host_port() const { return host + ":" + port; }
    std::string to_string() const { return "http://" + host_port() + base_path; }
};

/// Parses an http:// URL; https is not supported inside the mesh (Cilium can encrypt the wire).
Result<Url> parse_url(std::string_view text);

}  // namespace calcmesh
