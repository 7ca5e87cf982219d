#include "calcmesh/kube/yaml.hpp"

#include <gtest/gtest.h>

namespace calcmesh::kube {
namespace {

TEST(LoadYaml, ReadsEveryDocumentOfAStream) {
    const auto documents = load_yaml_documents("a: 1\n---\n- x\n---\n");
    ASSERT_TRUE(documents) << documents.error().message;
    ASSERT_EQ(documents.value().size(), 3u);
    EXPECT_EQ(documents.value()[0]["a"].as<int>(), 1);
    EXPECT_EQ(documents.value()[1][0].as<std::string>(), "x");
    EXPECT_TRUE(documents.value()[2].IsNull());
    EXPECT_TRUE(load_yaml_documents("").value().empty());
}

// yaml-cpp's own LoadAll never returns on these: it allocates until memory runs out.
TEST(LoadYaml, RefusesACommaWhereADocumentShouldStartWithItsPosition) {
    for (const auto& [text, where] : std::initializer_list<std::pair<std::string, std::string>>{
             {",", "line 1, column 1"},
             {"  ,", "line 1, column 3"},
             {"[a],", "line 1, column 4"},
             {"kind: Policy\n---\n,\n", "line 3, column 1"},
             {"- a\n,", "line 2, column 1"},
             {"&anchor ,", "line 1, column 9"}}) {
        const auto documents = load_yaml_documents(text);
        ASSERT_FALSE(documents) << text;
        EXPECT_NE(documents.error().message.find(where), std::string::npos)
            << text << ": " << documents.error().message;
        EXPECT_FALSE(load_yaml_document(text)) << text;
    }
}

TEST(LoadYaml, ExplainsOtherErrorsAndExpectsOneDocumentWhereOneIsAsked) {
    const auto broken = load_yaml_documents("a: [1, 2");
    ASSERT_FALSE(broken);
    EXPECT_EQ(broken.error().message.rfind("not YAML: ", 0), 0u) << broken.error().message;
    EXPECT_EQ(load_yaml_document("a: 1").value()["a"].as<int>(), 1);
    const auto two = load_yaml_document("a: 1\n---\nb: 2\n");
    ASSERT_FALSE(two);
    EXPECT_EQ(two.error().message, "expected one YAML document, found 2");
}

}  // namespace
}  // namespace calcmesh::kube
