// Privacy models on single classes with hand-computed answers.
#include "anonymize/models.h"

#include <gtest/gtest.h>

#include <cmath>

namespace cr::anonymize {
namespace {

ClassChecker::Verdict Check(const PrivacyModels& m, std::vector<uint32_t> global,
                            std::vector<uint32_t> codes, std::vector<uint32_t> counts,
                            bool ordered = false) {
  std::vector<uint32_t> rank(global.size());
  for (uint32_t i = 0; i < rank.size(); ++i) rank[i] = i;
  auto made = ClassChecker::Create(m, global, ordered ? rank : std::vector<uint32_t>{}, ordered);
  EXPECT_TRUE(made) << made.error().ToString();
  if (!made) return {false, false};
  const ClassChecker& c = *made;
  uint64_t size = 0;
  for (auto x : counts) size += x;
  return c.Check(size, codes.data(), counts.data(), codes.size());
}

TEST(ModelsTest, KAnonymity) {
  PrivacyModels m;
  m.k = 3;
  EXPECT_TRUE(Check(m, {}, {}, {3}).all_ok);
  EXPECT_FALSE(Check(m, {}, {}, {2}).monotone_ok);
  EXPECT_TRUE(m.AllMonotone());
}

TEST(ModelsTest, DistinctLDiversity) {
  PrivacyModels m;
  m.l = LDiversity{"s", LDiversity::Kind::kDistinct, 3, 1};
  EXPECT_TRUE(Check(m, {5, 5, 5}, {0, 1, 2}, {10, 1, 1}).all_ok);
  auto v = Check(m, {5, 5, 5}, {0, 1}, {1, 1});
  EXPECT_FALSE(v.monotone_ok);
  EXPECT_FALSE(v.all_ok);
  EXPECT_TRUE(m.AllMonotone());
}

TEST(ModelsTest, EntropyLDiversity) {
  PrivacyModels m;
  m.l = LDiversity{"s", LDiversity::Kind::kEntropy, 2, 1};
  // Two equally frequent values: entropy exactly log 2.
  EXPECT_TRUE(Check(m, {1, 1}, {0, 1}, {4, 4}).all_ok);
  // 7:1 has entropy 0.377 nats < log 2.
  EXPECT_FALSE(Check(m, {1, 1}, {0, 1}, {7, 1}).all_ok);
  EXPECT_FALSE(m.AllMonotone());
}

TEST(ModelsTest, RecursiveCLDiversity) {
  PrivacyModels m;
  m.l = LDiversity{"s", LDiversity::Kind::kRecursive, 2, 3};
  // r1 < c * (r2 + ... ): 5 < 3 * (2 + 1) holds; 10 < 3 * 3 does not.
  EXPECT_TRUE(Check(m, {1, 1, 1}, {0, 1, 2}, {5, 2, 1}).all_ok);
  EXPECT_FALSE(Check(m, {1, 1, 1}, {0, 1, 2}, {10, 2, 1}).all_ok);
  EXPECT_FALSE(Check(m, {1, 1, 1}, {0}, {3}).all_ok);  // fewer than l values
}

TEST(ModelsTest, TClosenessEqualDistance) {
  PrivacyModels m;
  m.t = TCloseness{"s", 0.25, TCloseness::Distance::kEqual};
  std::vector<uint32_t> global = {50, 50};
  ClassChecker c = *ClassChecker::Create(m, global, {}, false);
  uint32_t codes[] = {0, 1}, counts[] = {3, 1};
  // Class (0.75, 0.25) vs global (0.5, 0.5): half the L1 distance = 0.25.
  EXPECT_NEAR(c.Distance(4, codes, counts, 2), 0.25, 1e-12);
  EXPECT_TRUE(c.Check(4, codes, counts, 2).all_ok);
  uint32_t only[] = {0}, four[] = {4};
  EXPECT_NEAR(c.Distance(4, only, four, 1), 0.5, 1e-12);  // absent value counts fully
  EXPECT_FALSE(c.Check(4, only, four, 1).all_ok);
}

TEST(ModelsTest, TClosenessOrderedDistance) {
  // The example of Li et al.: salaries 3k..11k, global uniform over 9 values;
  // a class {3k, 4k, 5k} has ordered EMD 0.375; {6k, 8k, 11k} has 0.167.
  PrivacyModels m;
  m.t = TCloseness{"s", 0.2, TCloseness::Distance::kOrdered};
  std::vector<uint32_t> global(9, 1), rank(9);
  for (uint32_t i = 0; i < 9; ++i) rank[i] = i;
  ClassChecker c = *ClassChecker::Create(m, global, rank, true);
  uint32_t low[] = {0, 1, 2}, spread[] = {3, 5, 8}, ones[] = {1, 1, 1};
  EXPECT_NEAR(c.Distance(3, low, ones, 3), 0.375, 1e-9);
  EXPECT_NEAR(c.Distance(3, spread, ones, 3), 1.0 / 6, 1e-9);
  EXPECT_FALSE(c.Check(3, low, ones, 3).all_ok);
  EXPECT_TRUE(c.Check(3, spread, ones, 3).all_ok);
}


// Each bad parameter, given to the library directly (no config parser in
// between), is refused by name where the object is built.
void ExpectBadModels(const PrivacyModels& m, const std::string& names) {
  Status st = m.Validate();
  ASSERT_FALSE(st) << names;
  EXPECT_EQ(st.error().code, ErrorCode::BAD_INPUT);
  EXPECT_NE(st.error().message.find(names), std::string::npos) << st.error().message;
  EXPECT_EQ(st.error().message.find("--"), std::string::npos) << st.error().message;
  auto checker = ClassChecker::Create(m, {5, 5}, {}, false);
  ASSERT_FALSE(checker) << names;
  EXPECT_EQ(checker.error().message, st.error().message);
}

TEST(ModelsTest, ValidateNamesTheBadParameter) {
  PrivacyModels m;
  EXPECT_TRUE(m.Validate());
  m.k = 0;
  ExpectBadModels(m, "k must be at least 1 (is 0)");
  m.k = -3;
  ExpectBadModels(m, "k must be at least 1");
  m = PrivacyModels{};
  for (double bad : {-0.01, 1.5, std::nan("")}) {
    m.suppression_limit = bad;
    ExpectBadModels(m, "suppression limit must be a share in [0, 1]");
  }
  m = PrivacyModels{};
  m.l = LDiversity{"", LDiversity::Kind::kDistinct, 2, 1};
  ExpectBadModels(m, "l-diversity needs an attribute");
  m.l = LDiversity{"s", LDiversity::Kind::kEntropy, 0.5, 1};
  ExpectBadModels(m, "l must be at least 1 (is 0.5)");
  m.l = LDiversity{"s", LDiversity::Kind::kDistinct, INFINITY, 1};
  ExpectBadModels(m, "l must be at least 1");
  m.l = LDiversity{"s", LDiversity::Kind::kRecursive, 2, 0};
  ExpectBadModels(m, "c of recursive l-diversity must be above 0");
  m.l.reset();
  m.t = TCloseness{"", 0.2, TCloseness::Distance::kAuto};
  ExpectBadModels(m, "t-closeness needs an attribute");
  for (double bad : {-0.1, 1.01, std::nan("")}) {
    m.t = TCloseness{"s", bad, TCloseness::Distance::kAuto};
    ExpectBadModels(m, "t must be in [0, 1]");
  }
  m.t = TCloseness{"s", 0.2, TCloseness::Distance::kAuto};
  m.l = LDiversity{"other", LDiversity::Kind::kDistinct, 2, 1};
  ExpectBadModels(m, "l-diversity (other) and t-closeness (s) must name the same attribute");
}

TEST(ModelsTest, CheckerNeedsCountsAndRanksThatFit) {
  PrivacyModels m;
  m.l = LDiversity{"s", LDiversity::Kind::kDistinct, 2, 1};
  auto c = ClassChecker::Create(m, {}, {}, false);
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("need the counts of s"), std::string::npos);
  m.l.reset();
  m.t = TCloseness{"s", 0.2, TCloseness::Distance::kOrdered};
  c = ClassChecker::Create(m, {1, 1, 1}, {0, 1}, true);
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("2 ranks for 3 sensitive values"), std::string::npos);
  c = ClassChecker::Create(m, {1, 1, 1}, {0, 1, 1}, true);
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("not a permutation"), std::string::npos);
  c = ClassChecker::Create(m, {1, 1, 1}, {0, 1, 3}, true);
  ASSERT_FALSE(c);
  EXPECT_TRUE(ClassChecker::Create(m, {1, 1, 1}, {2, 0, 1}, true));
}

}  // namespace
}  // namespace cr::anonymize
