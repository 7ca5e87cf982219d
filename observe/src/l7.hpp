#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace calcmesh::observe {

/// The start of an HTTP/1.x request or response, from the first bytes of a TCP payload.
struct HttpMessage {
    bool response = false;
    std::string method;    ///< requests
    std::string target;    ///< requests: the path and query
    std::string host;      ///< requests: the Host header, if it was within the captured bytes
    unsigned status = 0;   ///< responses
    std::string protocol;  ///< "HTTP/1.1"
};

/// Decodes a request line (and the Host header if present) or a status line; nullopt if the
/// bytes are not the start of an HTTP message.
std::optional<HttpMessage> parse_http(std::string_view payload);

/// The header of a Kafka request and, for the APIs that name one early (produce, fetch,
/// metadata, list offsets), the first topic.
struct KafkaRequest {
    int api_key = 0;
    int api_version = 0;
    int correlation_id = 0;
    std::string client_id;
    std::string topic;  ///< empty if the request names none within the captured bytes
};

/// Decodes the first bytes of a Kafka request, in both the classic and the flexible (compact)
/// encodings; nullopt if they are not a plausible request header.
std::optional<KafkaRequest> parse_kafka_request(std::span<const std::uint8_t> payload);

/// Cilium's lower-case name of a Kafka API key ("produce", "fetch", "apiversions", ...).
std::string kafka_api_name(int api_key);

}  // namespace calcmesh::observe
