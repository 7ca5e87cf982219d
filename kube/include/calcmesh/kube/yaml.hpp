#pragma once

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
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

/// The path of a map's field for messages: "spec.ports" ("ports" at the top).
std::string join_field(const std::string& parent, std::string_view key);
/// The path of a list's item: "spec.ports[2]".
std::string index_field(const std::string& parent, std::size_t index);

/// What YAML 1.1 makes of a plain (unquoted) scalar that is no string: "the integer 5", "the
/// number 1.5", "the boolean yes" or "null"; empty for a string, a quoted scalar or a collection.
std::string plain_scalar_type(const YAML::Node& node);
/// A node as a message names it: "a list", "a map", "null", "the integer 5", "the string \"x\""
/// or "nothing".
std::string describe(const YAML::Node& node);

/// Told what is wrong with a field: its path and the problem. It may throw to stop reading at
/// the first problem, or record it and let the reader go on.
using FieldProblem = std::function<void(const std::string& field, const std::string& message)>;

/// One field of a YAML document, its node and path, read with typed accessors: the manifests'
/// model and the network policies both read through it. A missing or null field reads as
/// absent; a field of the wrong type is told to `problem` ("expected an integer, got the string
/// \"80\"") and then reads as absent too.
class YamlField {
  public:
    YamlField(const YAML::Node& node, std::string path, FieldProblem problem);

    bool present() const { return node_.IsDefined() && !node_.IsNull(); }
    const std::string& path() const { return path_; }
    const YAML::Node& node() const { return node_; }

    /// Tells `problem` what is wrong with this field.
    void problem(const std::string& message) const;
    /// The field `key` of this map; a present field that is not a map is a problem.
    YamlField operator[](std::string_view key) const;
    /// Whether the field is a map; if it is not, that is a problem.
    bool expect_map() const;

    /// Any scalar as text, as Kubernetes reads string fields (plain numbers too); `fallback` if
    /// absent.
    std::string text(const std::string& fallback = {}) const;
    /// A string that is one to the API server: quoted, or plain but no number, boolean or null.
    std::string string() const;
    /// A plain integer.
    std::optional<int> integer() const;
    /// A plain true or false.
    std::optional<bool> boolean() const;
    /// The items of a list, each with its path.
    std::vector<YamlField> items() const;
    /// A map of strings to strings, such as labels or ConfigMap data (values as `text`).
    std::map<std::string, std::string> string_map() const;

  private:
    YAML::Node node_;
    std::string path_;
    FieldProblem problem_;
};

}  // namespace calcmesh::kube
