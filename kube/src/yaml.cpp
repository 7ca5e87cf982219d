#include "calcmesh/kube/yaml.hpp"

#include <yaml-cpp/eventhandler.h>

#include <optional>
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

}  // namespace calcmesh::kube
