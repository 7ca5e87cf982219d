#pragma once

#include <string>
#include <string_view>

namespace calcmesh {

/// Escapes text for HTML element content and attribute values.
std::string html_escape(std::string_view text);

}  // namespace calcmesh
