#pragma once

// What the fuzz targets check on every input. A failed check prints what broke and aborts,
// which libFuzzer reports as a crash, saving the input that caused it.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "calcmesh/error.hpp"
#include "calcmesh/http.hpp"

namespace calcmesh::fuzz {

inline void check(bool condition, std::string_view what, std::string_view detail = {}) {
    if (!condition) {
        std::fprintf(stderr, "fuzz check failed: %.*s\n%.*s\n", static_cast<int>(what.size()),
                     what.data(), static_cast<int>(detail.size()), detail.data());
        std::abort();
    }
}

/// Bad input gets an error that says what was wrong and, for the codes about one known field,
/// which field; and the error can be answered as JSON whatever bytes of the input it quotes.
/// (An unknown field is named as it came, which may be the empty name.)
inline void check_clear_error(const Error& error) {
    check(!error.message.empty(), "an error without a message", error_code_name(error.code));
    const bool about_known_field =
        error.code == ErrorCode::missing_field || error.code == ErrorCode::out_of_range ||
        error.code == ErrorCode::unknown_operation || error.code == ErrorCode::unknown_mechanism;
    check(!about_known_field || !error.field.empty(), "an error that does not name its field",
          error.message);
    check(!error_response(error).body().empty(), "an error answered without a body", error.message);
}

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

}  // namespace calcmesh::fuzz
