#include "calcmesh/http.hpp"

#include <algorithm>
#include <cctype>
#include <optional>

#include "calcmesh/json_reader.hpp"

namespace calcmesh {

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

/// The text of a name or value with its escapes decoded; nothing if an escape is malformed.
std::optional<std::string> decode_component(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '+') {
            out += ' ';
        } else if (text[i] == '%') {
            const int high = i + 2 < text.size() ? hex_value(text[i + 1]) : -1;
            const int low = i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
            if (high < 0 || low < 0) {
                return std::nullopt;
            }
            out += static_cast<char>(high * 16 + low);
            i += 2;
        } else {
            out += text[i];
        }
    }
    return out;
}

}  // namespace

Result<FormFields> parse_form(std::string_view text) {
    FormFields fields;
    while (!text.empty()) {
        const auto amp = text.find('&');
        const auto pair = text.substr(0, amp);
        text = amp == std::string_view::npos ? std::string_view{} : text.substr(amp + 1);
        if (pair.empty()) {
            continue;
        }
        const auto eq = pair.find('=');
        const auto raw_name = pair.substr(0, eq);
        auto name = decode_component(raw_name);
        if (!name) {
            return fail(ErrorCode::invalid_field, "malformed percent-escape in the field name '" +
                                                      std::string(raw_name) +
                                                      "' (expected % and two hex digits)");
        }
        auto value = decode_component(eq == std::string_view::npos ? std::string_view{}
                                                                   : pair.substr(eq + 1));
        if (!value) {
            return fail(ErrorCode::invalid_field,
                        "malformed percent-escape in the value of field '" + *name +
                            "' (expected % and two hex digits)",
                        *name);
        }
        fields.emplace_back(std::move(*name), std::move(*value));
    }
    return fields;
}

std::string url_encode(std::string_view text) {
    static constexpr std::string_view kHex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 0xf];
        }
    }
    return out;
}

std::optional<std::string_view> Request::query_param(std::string_view name) const {
    for (const auto& [key, value] : query) {
        if (key == name) {
            return value;
        }
    }
    return std::nullopt;
}

std::string Request::media_type() const {
    const auto header = message[http::field::content_type];
    std::string type(header.substr(0, header.find(';')));
    type.erase(
        std::remove_if(type.begin(), type.end(), [](unsigned char c) { return std::isspace(c); }),
        type.end());
    std::transform(type.begin(), type.end(), type.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    return type;
}

template <bool isRequest>
void append_wire(std::string& out, http::message<isRequest, http::string_body>& message) {
    http::serializer<isRequest, http::string_body> serializer(message);
    boost::system::error_code ec;
    while (!ec && !serializer.is_done()) {
        serializer.next(ec, [&](boost::system::error_code&, const auto& buffers) {
            for (const auto buffer : beast::buffers_range_ref(buffers)) {
                out.append(static_cast<const char*>(buffer.data()), buffer.size());
            }
            serializer.consume(beast::buffer_bytes(buffers));
        });
    }
}

template void append_wire(std::string&, http::request<http::string_body>&);
template void append_wire(std::string&, http::response<http::string_body>&);

Response text_response(unsigned status, std::string body, std::string_view content_type) {
    Response response{static_cast<http::status>(status), 11};
    response.set(http::field::content_type, content_type);
    response.body() = std::move(body);
    response.prepare_payload();
    return response;
}

Response json_response(unsigned status, const nlohmann::json& body) {
    // Error messages quote the request (its path, a query value), whose bytes need not be
    // UTF-8. The strict default throws on them, which left the request unanswered; U+FFFD in
    // their place keeps the answer valid JSON.
    return json_text_response(status,
                              body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

Response json_text_response(unsigned status, std::string body) {
    body += '\n';
    return text_response(status, std::move(body), "application/json");
}

Response error_response(const Error& error) {
    auto response = json_response(http_status(error.code), error_json(error));
    add_retry_after(response, error.code);
    return response;
}

void add_retry_after(Response& response, ErrorCode code) {
    if (refused_before_work(code)) {
        response.set(http::field::retry_after, "1");
    }
}

Result<nlohmann::json> parse_json_object(std::string_view body) {
    auto json = parse_json_text(body);
    if (json.is_discarded()) {
        return fail(ErrorCode::invalid_json, "the body is not valid JSON");
    }
    if (!json.is_object()) {
        return fail(ErrorCode::invalid_json,
                    std::string("the body must be a JSON object, got ") + json.type_name());
    }
    return json;
}

Result<Url> parse_url(std::string_view text) {
    constexpr std::string_view kScheme = "http://";
    if (text.substr(0, kScheme.size()) != kScheme) {
        return fail(ErrorCode::invalid_field,
                    "URL '" + std::string(text) + "' must start with http://");
    }
    auto rest = text.substr(kScheme.size());
    const auto slash = rest.find('/');
    const auto authority = rest.substr(0, slash);
    Url url;
    url.base_path = slash == std::string_view::npos ? "" : std::string(rest.substr(slash));
    while (!url.base_path.empty() && url.base_path.back() == '/') {
        url.base_path.pop_back();
    }
    const auto colon = authority.rfind(':');
    if (authority.empty() || colon == 0) {
        return fail(ErrorCode::invalid_field, "URL '" + std::string(text) + "' has no host");
    }
    url.host = std::string(authority.substr(0, colon));
    url.port = colon == std::string_view::npos ? "80" : std::string(authority.substr(colon + 1));
    if (url.port.empty() || !std::all_of(url.port.begin(), url.port.end(),
                                         [](unsigned char c) { return std::isdigit(c); })) {
        return fail(ErrorCode::invalid_field, "URL '" + std::string(text) + "' has a bad port");
    }
    return url;
}

}  // namespace calcmesh
