#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

namespace calcmesh {

/// nlohmann's parse of text that came from outside; `is_discarded()` when the text is not one
/// JSON value. nlohmann's lexer takes a NUL byte for the end of the input, so it would accept
/// `{...}` followed by a NUL and anything; such text is refused here, as simdjson refuses it,
/// so that the full and the fast readers accept the same messages.
nlohmann::json parse_json_text(std::string_view text);

}  // namespace calcmesh
