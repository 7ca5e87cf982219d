#include "calcmesh/kube/yaml.hpp"

#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

namespace calcmesh::kube {

namespace {

/// Listens to the parser only for where each document starts: a second document starting
/// where the previous one did means the parser no longer advances.
class DocumentStarts : public YAML::EventHandler {
  public:
    std::optional<YAML::Mark> stuck_at;

    void OnDocumentStart(const YAML::Mark& mark) override {
        if (last_ && last_->pos == mark.pos) {
            stuck_at = mark;
        }
        last_ = mark;
    }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  const std::string&) override {}
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                         YAML::EmitterStyle::value) override {}
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                    YAML::EmitterStyle::value) override {}
    void OnMapEnd() override {}

  private:
    std::optional<YAML::Mark> last_;
};

std::string position(const YAML::Mark& mark) {
    return "line " + std::to_string(mark.line + 1) + ", column " + std::to_string(mark.column + 1);
}

}  // namespace

Result<std::vector<YAML::Node>> load_yaml_documents(const std::string& text) {
    try {
        std::istringstream stream(text);
        YAML::Parser parser(stream);
        DocumentStarts starts;
        while (!starts.stuck_at && parser.HandleNextDocument(starts)) {
        }
        if (starts.stuck_at) {
            return fail(ErrorCode::invalid_field,
                        "not YAML: " + position(*starts.stuck_at) +
                            ": unexpected ',' where a document's content should start");
        }
        return YAML::LoadAll(text);
    } catch (const YAML::Exception& error) {
        return fail(ErrorCode::invalid_field, std::string("not YAML: ") + error.what());
    }
}

Result<YAML::Node> load_yaml_document(const std::string& text) {
    BOOST_OUTCOME_TRY(documents, load_yaml_documents(text));
    if (documents.size() > 1) {
        return fail(ErrorCode::invalid_field,
                    "expected one YAML document, found " + std::to_string(documents.size()));
    }
    return documents.empty() ? YAML::Node() : documents.front();
}

std::string join_field(const std::string& parent, std::string_view key) {
    return parent.empty() ? std::string(key) : parent + "." + std::string(key);
}

std::string index_field(const std::string& parent, std::size_t index) {
    return parent + "[" + std::to_string(index) + "]";
}

std::string plain_scalar_type(const YAML::Node& node) {
    if (!node.IsScalar() || node.Tag() != "?") {
        return {};
    }
    static const std::regex kInteger("[-+]?(0|[1-9][0-9]*|0x[0-9a-fA-F]+|0o?[0-7]+)");
    static const std::regex kFloat("[-+]?([0-9]+\\.[0-9]*|\\.[0-9]+)([eE][-+]?[0-9]+)?");
    static const std::set<std::string, std::less<>> kBooleans = {"true", "false", "yes", "no",
                                                                 "on",   "off",   "y",   "n"};
    const std::string& text = node.Scalar();
    std::string lower = text;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (std::regex_match(text, kInteger)) {
        return "the integer " + text;
    }
    if (std::regex_match(text, kFloat)) {
        return "the number " + text;
    }
    if (kBooleans.contains(lower)) {
        return "the boolean " + text;
    }
    if (text == "~" || lower == "null") {
        return "null";
    }
    return {};
}

std::string describe(const YAML::Node& node) {
    if (!node.IsDefined()) {
        return "nothing";
    }
    if (node.IsSequence()) {
        return "a list";
    }
    if (node.IsMap()) {
        return "a map";
    }
    if (node.IsNull()) {
        return "null";
    }
    const auto type = plain_scalar_type(node);
    return type.empty() ? "the string \"" + node.Scalar() + "\"" : type;
}

YamlField::YamlField(const YAML::Node& node, std::string path, FieldProblem problem)
    : node_(node), path_(std::move(path)), problem_(std::move(problem)) {}

void YamlField::problem(const std::string& message) const {
    problem_(path_, message);
}

YamlField YamlField::operator[](std::string_view key) const {
    const auto path = join_field(path_, key);
    if (!present() || !expect_map()) {
        return {YAML::Node(YAML::NodeType::Undefined), path, problem_};
    }
    return {node_[std::string(key)], path, problem_};
}

bool YamlField::expect_map() const {
    if (node_.IsMap()) {
        return true;
    }
    problem("expected a map, got " + describe(node_));
    return false;
}

std::string YamlField::text(const std::string& fallback) const {
    if (!present()) {
        return fallback;
    }
    if (!node_.IsScalar()) {
        problem("expected a string, got " + describe(node_));
        return fallback;
    }
    return node_.Scalar();
}

std::string YamlField::string() const {
    if (!present()) {
        return {};
    }
    if (!node_.IsScalar()) {
        problem("expected a string, got " + describe(node_));
        return {};
    }
    if (const auto type = plain_scalar_type(node_); !type.empty()) {
        problem("expected a string, got " + type + " (quote it: \"" + node_.Scalar() + "\")");
        return {};
    }
    return node_.Scalar();
}

std::optional<int> YamlField::integer() const {
    if (!present()) {
        return std::nullopt;
    }
    if (!plain_scalar_type(node_).starts_with("the integer ")) {
        problem("expected an integer, got " + describe(node_));
        return std::nullopt;
    }
    try {
        return node_.as<int>();
    } catch (const YAML::Exception&) {
        problem("expected an integer, got '" + node_.Scalar() + "'");
        return std::nullopt;
    }
}

std::optional<bool> YamlField::boolean() const {
    if (!present()) {
        return std::nullopt;
    }
    const std::string text = node_.IsScalar() ? node_.Scalar() : "";
    if (node_.Tag() != "?" || (text != "true" && text != "false")) {
        problem("expected true or false, got " + describe(node_));
        return std::nullopt;
    }
    return text == "true";
}

std::vector<YamlField> YamlField::items() const {
    std::vector<YamlField> result;
    if (!present()) {
        return result;
    }
    if (!node_.IsSequence()) {
        problem("expected a list, got " + describe(node_));
        return result;
    }
    for (std::size_t i = 0; i < node_.size(); ++i) {
        result.emplace_back(node_[i], index_field(path_, i), problem_);
    }
    return result;
}

std::map<std::string, std::string> YamlField::string_map() const {
    std::map<std::string, std::string> result;
    if (!present() || !expect_map()) {
        return result;
    }
    for (const auto& entry : node_) {
        const auto key = entry.first.Scalar();
        result[key] = YamlField(entry.second, join_field(path_, key), problem_).text();
    }
    return result;
}

}  // namespace calcmesh::kube
