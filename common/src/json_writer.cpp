#include "calcmesh/json_writer.hpp"

#include <array>
#include <charconv>

namespace calcmesh {

namespace {

/// The escape of each byte that JSON strings cannot hold as it is; empty for the others.
constexpr auto kEscapes = [] {
    std::array<std::string_view, 256> escapes{};
    constexpr std::array<std::string_view, 32> kControl = {
        "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007",
        "\\b",     "\\t",     "\\n",     "\\u000b", "\\f",     "\\r",     "\\u000e", "\\u000f",
        "\\u0010", "\\u0011", "\\u0012", "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017",
        "\\u0018", "\\u0019", "\\u001a", "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f"};
    for (std::size_t i = 0; i < kControl.size(); ++i) {
        escapes[i] = kControl[i];
    }
    escapes['"'] = "\\\"";
    escapes['\\'] = "\\\\";
    return escapes;
}();

}  // namespace

void append_json_string(std::string& out, std::string_view text) {
    // Runs of plain bytes go in with one append: byte by byte cost a tenth of a worker's work.
    out += '"';
    std::size_t plain = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const auto escape = kEscapes[static_cast<unsigned char>(text[i])];
        if (!escape.empty()) {
            out.append(text.data() + plain, i - plain);
            out += escape;
            plain = i + 1;
        }
    }
    out.append(text.data() + plain, text.size() - plain);
    out += '"';
}

std::string& JsonObjectWriter::key(std::string_view name) {
    out_ += first_ ? "\"" : ",\"";
    first_ = false;
    out_ += name;
    out_ += "\":";
    return out_;
}

void append_json_integer(std::string& out, std::int64_t value) {
    std::array<char, 24> digits{};
    const auto end = std::to_chars(digits.data(), digits.data() + digits.size(), value).ptr;
    out.append(digits.data(), end);
}

}  // namespace calcmesh
