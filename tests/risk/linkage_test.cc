// Linkage attacks whose outcome is known by hand, and the generalisation-aware matcher.
#include "risk/linkage.h"

#include <gtest/gtest.h>

#include "anonymize/table.h"

namespace cr::risk {
namespace {

using anonymize::ReadCsv;

TEST(ValueMatcherTest, UnderstandsGeneralisedValues) {
  auto m = ValueMatcher::Parse("[50, 60[");
  EXPECT_TRUE(m.Matches("53"));
  EXPECT_TRUE(m.Matches("50"));
  EXPECT_FALSE(m.Matches("60"));
  EXPECT_FALSE(m.Matches("fifty"));
  m = ValueMatcher::Parse("[50, 60)");
  EXPECT_TRUE(m.Matches("59.5"));
  EXPECT_FALSE(m.Matches("60"));
  m = ValueMatcher::Parse("50-59");
  EXPECT_TRUE(m.Matches("59"));
  EXPECT_FALSE(m.Matches("60"));
  EXPECT_FALSE(m.Matches("49"));
  m = ValueMatcher::Parse("021**");
  EXPECT_TRUE(m.Matches("02139"));
  EXPECT_FALSE(m.Matches("0213"));
  EXPECT_FALSE(m.Matches("03139"));
  m = ValueMatcher::Parse("*");
  EXPECT_TRUE(m.Matches("anything"));
  m = ValueMatcher::Parse("<20");
  EXPECT_TRUE(m.Matches("19"));
  EXPECT_FALSE(m.Matches("20"));
  m = ValueMatcher::Parse(">=90");
  EXPECT_TRUE(m.Matches("90"));
  EXPECT_FALSE(m.Matches("89"));
  m = ValueMatcher::Parse("Female");
  EXPECT_TRUE(m.Matches("Female"));
  EXPECT_FALSE(m.Matches("Male"));
  m = ValueMatcher::Parse("-5");
  EXPECT_TRUE(m.Matches("-5"));
  EXPECT_FALSE(m.Matches("-4"));
}

constexpr const char* kRelease =
    "id,age,zip,disease\n"
    "r1,30-39,021**,flu\n"
    "r2,30-39,021**,flu\n"
    "r3,30-39,021**,cold\n"
    "r4,\"[40, 50[\",021**,flu\n"
    "r5,\"[40, 50[\",021**,flu\n"
    "r6,50-59,022**,cancer\n";

// a: 3 candidates, mixed values; b, e: the lone r6 (b rightly, e wrongly);
// c: 2 candidates who both have flu; d: nobody.
constexpr const char* kAux =
    "name,id,age,zip\n"
    "a,r1,35,02139\n"
    "b,r6,55,02201\n"
    "c,r4,45,02100\n"
    "d,r7,70,02139\n"
    "e,r9,55,02201\n";

TEST(LinkageTest, HandComputedAttack) {
  auto rel = ReadCsv(kRelease);
  auto aux = ReadCsv(kAux);
  ASSERT_TRUE(rel && aux);
  LinkageOptions opt;
  opt.link = {"age", "zip"};
  opt.truth = "id";
  opt.sensitive = "disease";
  auto r = RunLinkage(*rel, *aux, opt);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->aux_records, 5u);
  EXPECT_EQ(r->release_patterns, 3u);
  EXPECT_EQ(r->matched, 4u);
  EXPECT_EQ(r->unmatched, 1u);
  EXPECT_EQ(r->reidentified, 2u);
  ASSERT_TRUE(r->correct.has_value());
  EXPECT_EQ(*r->correct, 1u);
  EXPECT_EQ(r->candidates.at("0"), 1u);
  EXPECT_EQ(r->candidates.at("1"), 2u);
  EXPECT_EQ(r->candidates.at("2-4"), 2u);
  ASSERT_TRUE(r->disclosed.has_value());
  EXPECT_EQ(*r->disclosed, 3u);
  EXPECT_EQ(r->disclosed_values.at("cancer"), 2u);
  EXPECT_EQ(r->disclosed_values.at("flu"), 1u);
  auto j = ToJson(*r);
  EXPECT_EQ(j["reidentified"], 2);
  EXPECT_EQ(j["candidates"]["20+"], 0);
}

TEST(LinkageTest, StarMatchesEveryPattern) {
  auto rel = ReadCsv("age,zip\n*,021**\n*,022**\n30,*\n");
  auto aux = ReadCsv("age,zip\n30,02111\n");
  ASSERT_TRUE(rel && aux);
  LinkageOptions opt;
  opt.link = {"age", "zip"};
  auto r = RunLinkage(*rel, *aux, opt);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->candidates.at("2-4"), 1u);  // rows 1 and 3
  EXPECT_EQ(r->reidentified, 0u);
  EXPECT_FALSE(r->correct.has_value());
  EXPECT_FALSE(r->disclosed.has_value());
}

// Nested ranges make one aux value match hundreds of labels: past 256 label
// combinations the attack scans patterns instead of probing a hash; both
// paths must count the same candidates.
TEST(LinkageTest, ManyMatchingLabelsTakeTheScanningPath) {
  std::string rel = "age,sex\n";
  for (int i = 1; i <= 300; ++i) rel += "\"[0, " + std::to_string(i) + "[\",F\n";
  auto r1 = ReadCsv(rel);
  auto aux = ReadCsv("age,sex\n0,F\n295,F\n299,F\n299,M\n");
  ASSERT_TRUE(r1 && aux);
  LinkageOptions opt;
  opt.link = {"age", "sex"};
  auto r = RunLinkage(*r1, *aux, opt);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->candidates.at("20+"), 1u);  // age 0: 300 labels, scanned
  EXPECT_EQ(r->candidates.at("5-9"), 1u);  // age 295: 5 labels, hash probes
  EXPECT_EQ(r->candidates.at("1"), 1u);
  EXPECT_EQ(r->candidates.at("0"), 1u);
  EXPECT_EQ(r->reidentified, 1u);
}

TEST(LinkageTest, MissingColumnsNameTheSide) {
  auto rel = ReadCsv(kRelease);
  auto aux = ReadCsv("age,postcode\n30,02139\n");
  ASSERT_TRUE(rel && aux);
  LinkageOptions opt;
  opt.link = {"age", "zip"};
  auto r = RunLinkage(*rel, *aux, opt);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::UNKNOWN_COLUMN);
  EXPECT_NE(r.error().message.find("aux"), std::string::npos);
  EXPECT_EQ(r.error().message, "link columns (auxiliary data): no column zip");
  opt.link = {"age"};
  opt.truth = "id";
  EXPECT_EQ(RunLinkage(*rel, *aux, opt).error().code, ErrorCode::UNKNOWN_COLUMN);
}

}  // namespace
}  // namespace cr::risk
