// anon.yaml through the strict reader: each refusal is a config that a lenient
// parser would have read as something its author did not write.
#include "anonymize/config.h"

#include <gtest/gtest.h>

namespace cr::anonymize {
namespace {

constexpr const char* kQi = "quasi_identifiers:\n  zip: {generalize: prefix}\n";

// The error of parsing `yaml`; fails the test when it parses.
Error ErrorOf(const std::string& yaml) {
  auto c = ParseConfig(yaml, ".");
  EXPECT_FALSE(c) << yaml;
  return c ? Error{} : c.error();
}

void ExpectRefused(const std::string& yaml, std::initializer_list<std::string> parts) {
  Error e = ErrorOf(yaml);
  EXPECT_EQ(e.code, ErrorCode::BAD_INPUT) << yaml;
  for (const auto& p : parts) EXPECT_NE(e.message.find(p), std::string::npos) << e.message;
}

TEST(ConfigTest, AKeyGivenTwiceIsRefusedWithItsPathAndLine) {
  // yaml-cpp keeps both and a lookup returns the first: `k: 2` used to win
  // silently over the `k: 10` a reviewer reads last.
  ExpectRefused(std::string(kQi) + "privacy:\n  k: 2\n  suppression_limit: 0.1\n  k: 10\n",
                {"privacy.k: duplicate key", "(line 6)"});
  ExpectRefused(std::string(kQi) + "  zip: {generalize: prefix}\n",
                {"quasi_identifiers.zip: duplicate key", "(line 3)"});
  ExpectRefused(std::string(kQi) + "others: remove\nothers: refuse\n",
                {"others: duplicate key", "(line 4)"});
}

TEST(ConfigTest, AQuotedNumberIsRefused) {
  ExpectRefused(std::string(kQi) + "privacy:\n  k: \"5\"\n",
                {"privacy.k: expected an integer, found a quoted string", "(line 4)"});
  ExpectRefused(std::string(kQi) + "privacy: {suppression_limit: '0.1'}\n",
                {"privacy.suppression_limit: expected a number", "(line 3)"});
  ExpectRefused("quasi_identifiers:\n  age: {generalize: intervals, widths: [5, \"10\"]}\n",
                {"quasi_identifiers.age.widths: expected a number", "(line 2)"});
}

TEST(ConfigTest, AnUnknownKeyIsRefused) {
  ExpectRefused(std::string(kQi) + "privacy:\n  k: 5\n  suppresion_limit: 0.1\n",
                {"privacy.suppresion_limit: unknown key", "(line 5)"});
  ExpectRefused(std::string(kQi) + "other: remove\n", {"other: unknown key", "(line 3)"});
  ExpectRefused("quasi_identifiers:\n  zip: {generalise: prefix}\n",
                {"quasi_identifiers.zip.generalise: unknown key", "(line 2)"});
}

TEST(ConfigTest, NumbersMustBeWhatTheFieldTakes) {
  // `k: 5.5` used to be truncated to 5, `k: 0` is no model at all.
  ExpectRefused(std::string(kQi) + "privacy: {k: 5.5}\n", {"privacy.k: expected an integer"});
  ExpectRefused(std::string(kQi) + "privacy: {k: 0}\n", {"privacy.k: must be an integer in [1,"});
  ExpectRefused(std::string(kQi) + "privacy: {suppression_limit: 1.5}\n",
                {"privacy.suppression_limit: must be in [0, 1]"});
  ExpectRefused(std::string(kQi) + "privacy: {suppression_limit: .nan}\n",
                {"expected a finite number"});
  ExpectRefused(std::string(kQi) + "identifiers: {phone: {mask: {keep_last: 2.5}}}\n",
                {"identifiers.phone.mask.keep_last: expected an integer"});
}

TEST(ConfigTest, OneDocumentOnly) {
  ExpectRefused(std::string(kQi) + "---\nothers: remove\n",
                {"config: holds 2 YAML documents; expected one"});
  ExpectRefused("", {"config: the file is empty"});
  ExpectRefused("quasi_identifiers: [\n", {"config: not valid YAML"});
}

TEST(ConfigTest, OptionsOfAnotherKindAreRefused) {
  ExpectRefused("quasi_identifiers:\n  zip: {generalize: prefix, widths: [10]}\n",
                {"quasi_identifiers.zip.widths: not allowed with generalize: prefix"});
  ExpectRefused("quasi_identifiers:\n  zip: {hierarchy: h.csv, generalize: prefix}\n",
                {"give either hierarchy or generalize"});
  ExpectRefused(std::string(kQi) + "attributes: {salary: {transform: keep, scale: 5}}\n",
                {"attributes.salary.scale: not allowed with transform: keep"});
  ExpectRefused(std::string(kQi) + "identifiers: {ssn: {transform: drop, secret: s}}\n",
                {"identifiers.ssn.secret: not allowed with transform: drop"});
  ExpectRefused(std::string(kQi) + "privacy: {l: {attribute: d, l: 2, c: 3}}\nsensitive: {d: {}}\n",
                {"privacy.l.c: only recursive l-diversity takes c"});
  ExpectRefused(std::string(kQi) + "sensitive: {d: yes}\n", {"sensitive.d: takes no options"});
}

TEST(ConfigTest, OneTreatmentPerColumn) {
  ExpectRefused(std::string(kQi) + "attributes: {zip: {transform: keep}}\n",
                {"attributes.zip: column already has a treatment under quasi_identifiers"});
}

TEST(ConfigTest, OthersDefaultsToRefuse) {
  auto c = ParseConfig(kQi, ".");
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->others, Others::kRefuse);
  EXPECT_TRUE(c->Declares("zip"));
  EXPECT_FALSE(c->Declares("name"));
  c = ParseConfig(std::string(kQi) + "others: remove\n", ".");
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->others, Others::kRemove);
  ExpectRefused(std::string(kQi) + "others: keep\n",
                {"others: unknown treatment 'keep' (expected one of: refuse, remove)"});
}

}  // namespace
}  // namespace cr::anonymize
