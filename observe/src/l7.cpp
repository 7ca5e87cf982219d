#include "l7.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>

#include "calcmesh/policy/kafka_api.hpp"

namespace calcmesh::observe {

namespace {

constexpr std::string_view kHttpPrefix = "HTTP/";

// Bounded big-endian reads over the captured bytes; every read fails once they run out.
class Reader {
  public:
    explicit Reader(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}

    bool ok() const { return ok_; }

    std::int64_t integer(int size) {
        if (!need(size)) {
            return 0;
        }
        std::uint64_t value = 0;
        for (int i = 0; i < size; ++i) {
            value = value << 8 | bytes_[offset_++];
        }
        // Sign-extend: Kafka's integers are signed.
        const int shift = 64 - 8 * size;
        return static_cast<std::int64_t>(value << shift) >> shift;
    }

    std::uint64_t uvarint() {
        std::uint64_t value = 0;
        for (int shift = 0; shift < 64 && need(1); shift += 7) {
            const auto byte = bytes_[offset_++];
            value |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
            if ((byte & 0x80) == 0) {
                return value;
            }
        }
        ok_ = false;
        return 0;
    }

    void skip(std::size_t size) {
        if (need(size)) {
            offset_ += size;
        }
    }

    std::string text(std::size_t size) {
        if (!need(size)) {
            return {};
        }
        std::string value(reinterpret_cast<const char*>(bytes_.data() + offset_), size);
        offset_ += size;
        return value;
    }

    // STRING / NULLABLE_STRING (int16 length, -1 null) or their compact forms (length + 1).
    std::string string(bool compact) {
        const auto length = compact ? static_cast<std::int64_t>(uvarint()) - 1 : integer(2);
        return length <= 0 ? std::string() : text(static_cast<std::size_t>(length));
    }

    // The element count of an ARRAY (int32, -1 null) or COMPACT_ARRAY (count + 1, 0 null).
    std::int64_t array(bool compact) {
        return compact ? static_cast<std::int64_t>(uvarint()) - 1 : integer(4);
    }

    void tagged_fields() {
        for (auto count = uvarint(); ok_ && count > 0; --count) {
            uvarint();
            skip(uvarint());
        }
    }

  private:
    bool need(std::size_t size) {
        if (offset_ + size > bytes_.size()) {
            ok_ = false;
        }
        return ok_;
    }

    std::span<const std::uint8_t> bytes_;
    std::size_t offset_ = 0;
    bool ok_ = true;
};

// The first API version of each request that uses the flexible (compact) encoding.
int first_flexible_version(int api_key) {
    static const std::map<int, int> kFirst = {
        {0, 9},  {1, 12}, {2, 6},  {3, 9},  {8, 8},  {9, 6},  {10, 3}, {11, 6}, {12, 4}, {13, 4},
        {14, 4}, {15, 5}, {16, 3}, {18, 3}, {19, 5}, {20, 4}, {21, 2}, {22, 2}, {23, 4}, {24, 3},
        {25, 3}, {26, 3}, {28, 3}, {32, 4}, {33, 2}, {36, 2}, {37, 2}, {42, 2}};
    const auto found = kFirst.find(api_key);
    return found == kFirst.end() ? 1 << 16 : found->second;
}

std::string first_topic(Reader& in, int api_key, int version, bool compact) {
    constexpr int kProduce = 0, kFetch = 1, kListOffsets = 2, kMetadata = 3;
    switch (api_key) {
        case kProduce:
            if (version >= 13) {
                return {};  // topics by id from here on
            }
            if (version >= 3) {
                in.string(compact);  // transactional_id
            }
            in.skip(2 + 4);  // acks, timeout_ms
            break;
        case kFetch:
            if (version >= 13) {
                return {};
            }
            in.skip(4 + 4 + 4);  // replica_id, max_wait_ms, min_bytes
            if (version >= 3) {
                in.skip(4);  // max_bytes
            }
            if (version >= 4) {
                in.skip(1);  // isolation_level
            }
            if (version >= 7) {
                in.skip(4 + 4);  // session_id, session_epoch
            }
            break;
        case kListOffsets:
            in.skip(4);  // replica_id
            if (version >= 2) {
                in.skip(1);  // isolation_level
            }
            break;
        case kMetadata:
            break;
        default:
            return {};
    }
    if (in.array(compact) <= 0) {
        return {};
    }
    if (api_key == kMetadata && version >= 10) {
        in.skip(16);  // topic_id
    }
    auto topic = in.string(compact);
    return in.ok() ? topic : std::string();
}

bool is_token(std::string_view text) {
    return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
        return std::isupper(static_cast<unsigned char>(c)) != 0;
    });
}

std::string_view trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
        text.remove_prefix(1);
    }
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) {
        text.remove_suffix(1);
    }
    return text;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

}  // namespace

std::optional<HttpMessage> parse_http(std::string_view payload) {
    const auto line_end = payload.find("\r\n");
    if (line_end == std::string_view::npos) {
        return std::nullopt;
    }
    const auto line = payload.substr(0, line_end);
    const auto first = line.find(' ');
    if (first == std::string_view::npos) {
        return std::nullopt;
    }
    HttpMessage message;
    if (line.starts_with(kHttpPrefix)) {
        message.response = true;
        message.protocol = std::string(line.substr(0, first));
        const auto code = line.substr(first + 1, 3);
        if (std::from_chars(code.data(), code.data() + code.size(), message.status).ec !=
                std::errc() ||
            message.status < 100 || message.status > 599) {
            return std::nullopt;
        }
        return message;
    }
    const auto second = line.find(' ', first + 1);
    if (second == std::string_view::npos || !is_token(line.substr(0, first)) ||
        !line.substr(second + 1).starts_with(kHttpPrefix)) {
        return std::nullopt;
    }
    message.method = std::string(line.substr(0, first));
    message.target = std::string(line.substr(first + 1, second - first - 1));
    message.protocol = std::string(line.substr(second + 1));
    // Headers up to the end of the captured bytes; a Host header cut short is ignored.
    for (auto rest = payload.substr(line_end + 2);;) {
        const auto end = rest.find("\r\n");
        if (end == std::string_view::npos || end == 0) {
            break;
        }
        const auto header = rest.substr(0, end);
        const auto colon = header.find(':');
        if (colon != std::string_view::npos && iequals(header.substr(0, colon), "host")) {
            message.host = std::string(trim(header.substr(colon + 1)));
        }
        rest.remove_prefix(end + 2);
    }
    return message;
}

std::optional<KafkaRequest> parse_kafka_request(std::span<const std::uint8_t> payload) {
    Reader in(payload);
    const auto size = in.integer(4);
    KafkaRequest request;
    request.api_key = static_cast<int>(in.integer(2));
    request.api_version = static_cast<int>(in.integer(2));
    request.correlation_id = static_cast<int>(in.integer(4));
    // The header's client_id is a classic NULLABLE_STRING in every header version.
    request.client_id = in.string(false);
    if (!in.ok() || size < 8 || request.api_key < 0 || request.api_key >= 100 ||
        request.api_version < 0 || request.api_version >= 32) {
        return std::nullopt;
    }
    const bool compact = request.api_version >= first_flexible_version(request.api_key);
    if (compact) {
        in.tagged_fields();
    }
    if (in.ok()) {
        request.topic = first_topic(in, request.api_key, request.api_version, compact);
    }
    return request;
}

std::string kafka_api_name(int api_key) {
    for (const auto& [name, number] : policy::kafka_api_keys()) {
        if (number == api_key) {
            return name;
        }
    }
    return "apikey" + std::to_string(api_key);
}

}  // namespace calcmesh::observe
