// The strict YAML reader: each refusal is a config mistake that a lenient
// reader would turn into a silently different document.
#include "common/yaml.h"

#include <gtest/gtest.h>

namespace cr::yaml {
namespace {

constexpr Reader kConfig(ErrorCode::BAD_INPUT, "config");
constexpr Reader kSpec(ErrorCode::SPEC_INVALID, "spec");

YAML::Node Load(const std::string& text) {
  auto n = kConfig.LoadOne(text);
  EXPECT_TRUE(n) << n.error().ToString();
  return n ? *n : YAML::Node();
}

// `message` must contain every one of `parts`.
void ExpectError(const Error& e, ErrorCode code, std::initializer_list<std::string> parts) {
  EXPECT_EQ(e.code, code) << e.message;
  for (const auto& p : parts) EXPECT_NE(e.message.find(p), std::string::npos) << e.message;
}

TEST(YamlTest, DuplicateKeyNamesThePathAndTheLine) {
  // yaml-cpp keeps both entries and a lookup sees only the first: the second
  // `k` (the one a reader of the file would believe) would be ignored.
  YAML::Node root = Load("privacy:\n  k: 5\n  k: 2\n");
  auto top = kConfig.ReadMap(root, "", {"privacy"});
  ASSERT_TRUE(top);
  auto privacy = kConfig.ReadMap(*top->Get("privacy"), top->Path("privacy"), {"k"});
  ASSERT_FALSE(privacy);
  ExpectError(privacy.error(), ErrorCode::BAD_INPUT, {"privacy.k: duplicate key", "(line 3)"});
}

TEST(YamlTest, TheErrorCodeIsTheReadersOwn) {
  YAML::Node root = Load("a: 1\na: 2\n");
  ExpectError(kSpec.ReadMap(root, "").error(), ErrorCode::SPEC_INVALID, {"a: duplicate key"});
  ExpectError(kConfig.ReadMap(root, "").error(), ErrorCode::BAD_INPUT, {"a: duplicate key"});
}

TEST(YamlTest, UnknownKeyIsRefusedWithTheChoices) {
  YAML::Node root = Load("privacy:\n  k: 5\n  suppresion_limit: 0.1\n");
  auto top = kConfig.ReadMap(root, "");
  ASSERT_TRUE(top);
  auto m = kConfig.ReadMap(*top->Get("privacy"), "privacy", {"k", "suppression_limit"});
  ASSERT_FALSE(m);
  ExpectError(m.error(), ErrorCode::BAD_INPUT,
              {"privacy.suppresion_limit: unknown key", "k, suppression_limit", "(line 3)"});
}

TEST(YamlTest, QuotedNumbersAreStrings) {
  YAML::Node root = Load("k: \"5\"\nt: '0.2'\nplain: 5\n");
  ExpectError(kConfig.GetInt(root["k"], "privacy.k").error(), ErrorCode::BAD_INPUT,
              {"privacy.k: expected an integer, found a quoted string", "(line 1)"});
  ExpectError(kConfig.GetNumber(root["t"], "privacy.t").error(), ErrorCode::BAD_INPUT,
              {"expected a number", "(line 2)"});
  EXPECT_EQ(*kConfig.GetInt(root["plain"], "plain"), 5);
  EXPECT_EQ(*kConfig.GetNumber(root["plain"], "plain"), 5.0);
}

TEST(YamlTest, NumbersAreFiniteDecimals) {
  YAML::Node root = Load("a: .inf\nb: .nan\nc: 0x10\nd: 5.5\ne: 1e3\nf: -2\n");
  for (const char* k : {"a", "b", "c"}) {
    EXPECT_FALSE(kConfig.GetNumber(root[k], k)) << k;
  }
  EXPECT_FALSE(kConfig.GetInt(root["d"], "d"));  // not silently truncated to 5
  EXPECT_EQ(*kConfig.GetNumber(root["e"], "e"), 1000.0);
  EXPECT_EQ(*kConfig.GetInt(root["f"], "f"), -2);
}

TEST(YamlTest, BooleansAreTrueOrFalseOnly) {
  YAML::Node root = Load("a: yes\nb: no\nc: on\nd: true\ne: False\nf: \"true\"\n");
  for (const char* k : {"a", "b", "c", "f"}) {
    auto r = kConfig.GetBool(root[k], k);
    ASSERT_FALSE(r) << k;
    ExpectError(r.error(), ErrorCode::BAD_INPUT, {"expected true or false"});
  }
  EXPECT_TRUE(*kConfig.GetBool(root["d"], "d"));
  EXPECT_FALSE(*kConfig.GetBool(root["e"], "e"));
}

TEST(YamlTest, OneDocumentExactly) {
  ExpectError(kConfig.LoadOne("k: 5\n---\nk: 1\n").error(), ErrorCode::BAD_INPUT,
              {"config: holds 2 YAML documents; expected one"});
  ExpectError(kConfig.LoadOne("").error(), ErrorCode::BAD_INPUT, {"config: the file is empty"});
  ExpectError(kConfig.LoadOne("a: [1, 2\n").error(), ErrorCode::BAD_INPUT,
              {"config: not valid YAML", "line"});
}

TEST(YamlTest, StringListsAndStrings) {
  YAML::Node root = Load("a: [x, y]\nb: [x, x]\nc: []\nd: {x: 1}\n");
  EXPECT_EQ(*kConfig.GetStringList(root["a"], "a", false), (std::vector<std::string>{"x", "y"}));
  ExpectError(kConfig.GetStringList(root["b"], "b", false).error(), ErrorCode::BAD_INPUT,
              {"listed twice"});
  EXPECT_FALSE(kConfig.GetStringList(root["c"], "c", false));
  EXPECT_TRUE(kConfig.GetStringList(root["c"], "c", true));
  ExpectError(kConfig.GetString(root["d"], "d").error(), ErrorCode::BAD_INPUT,
              {"d: expected a string, found a mapping", "(line 4)"});
}

TEST(YamlTest, RequiredFieldsAndEnums) {
  YAML::Node root = Load("kind: lst\n");
  auto m = kConfig.ReadMap(root, "rule");
  ASSERT_TRUE(m);
  ExpectError(m->Require("receivers").error(), ErrorCode::BAD_INPUT,
              {"rule.receivers: required field is missing"});
  enum class Kind { kList, kCustom };
  constexpr std::pair<Kind, std::string_view> kKinds[] = {{Kind::kList, "list"},
                                                          {Kind::kCustom, "custom"}};
  auto k = kConfig.GetEnum(*m->Get("kind"), m->Path("kind"), kKinds, "rule kind");
  ASSERT_FALSE(k);
  ExpectError(k.error(), ErrorCode::BAD_INPUT,
              {"rule.kind: unknown rule kind 'lst' (expected one of: list, custom)"});
  YAML::Node ok = Load("kind: custom\n");
  EXPECT_EQ(*kConfig.GetEnum(ok["kind"], "kind", kKinds, "rule kind"), Kind::kCustom);
  // The document itself is named when there is no path.
  ExpectError(kConfig.ReadMap(Load("[1, 2]\n"), "").error(), ErrorCode::BAD_INPUT,
              {"config: expected a mapping, found a list"});
}

}  // namespace
}  // namespace cr::yaml
