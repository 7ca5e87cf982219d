#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "calcmesh/error.hpp"

namespace calcmesh::kube {

/// Every document of a YAML stream, or why it is not YAML (line and column).
/// yaml-cpp 0.7 does not consume a ',' where a document's node should start (",", "[a],"): its
/// LoadAll then makes empty documents at that spot without end, until memory runs out. Such a
/// stream is refused here before yaml-cpp builds any node.
Result<std::vector<YAML::Node>> load_yaml_documents(const std::string& text);

/// The one document of a YAML text; refused as above, and when there is more than one.
Result<YAML::Node> load_yaml_document(const std::string& text);

}  // namespace calcmesh::kube
