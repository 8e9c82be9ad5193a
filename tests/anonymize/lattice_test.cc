// The lattice search against ARX's published optimum on Adult, against a
// brute-force evaluation of every node, and on small tables with known answers.
#include "anonymize/lattice.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "anonymize/adult_test_util.h"
#include "anonymize/lattice_oracle.h"

namespace cr::anonymize {
namespace {

using testing::Adult;
using testing::AdultInput;
using testing::BuildOracle;
using testing::ExpectSameOptimum;
using testing::LoadAdult;
using testing::Oracle;

const Adult& SharedAdult() {
  static Adult a = LoadAdult();
  return a;
}

TEST(LatticeTest, AdultMatchesArxReference) {
  const Adult& a = SharedAdult();
  ASSERT_EQ(a.table.num_rows(), 30162u);
  PrivacyModels m;
  m.k = 5;
  m.suppression_limit = 0.04;
  auto search = LatticeSearch::Create(AdultInput(a, m));
  ASSERT_TRUE(search.has_value()) << search.error().ToString();
  EXPECT_EQ((*search)->heights(), (std::vector<int>{1, 4, 1, 2, 3, 2, 2, 2, 1}));
  SearchResult r = (*search)->Run();
  ASSERT_TRUE(r.found);
  EXPECT_EQ(r.nodes, 12960u);
  EXPECT_EQ(r.best.levels, (std::vector<int>{1, 0, 1, 1, 3, 2, 2, 0, 1}));
  const double kArx = 255559.85455731067;
  EXPECT_LT(std::fabs(r.best.non_uniform_entropy - kArx) / kArx, 1e-9)
      << r.best.non_uniform_entropy;
  EXPECT_EQ(r.best.suppressed, 906u);
  EXPECT_TRUE(r.best.satisfied);
  // Pruning has to do most of the work: far fewer checks than nodes.
  EXPECT_LT(r.evaluated, r.nodes / 4);
}

TEST(LatticeTest, AdultRiskBeforeMatchesPublishedUniques) {
  PrivacyModels m;
  auto search = LatticeSearch::Create(AdultInput(SharedAdult(), m));
  ASSERT_TRUE(search.has_value());
  Risk r = RiskOfClasses((*search)->ClassSizes(std::vector<int>(9, 0)));
  EXPECT_NEAR(r.sample_uniques, 0.51, 0.01);
  EXPECT_EQ(r.max, 1.0);
  EXPECT_EQ(r.records, 30162u);
}

TEST(LatticeTest, PrunedSearchMatchesBruteForceOnSixColumns) {
  const Adult& a = SharedAdult();
  std::vector<std::string> qis = {"sex",       "age",           "race", "marital-status",
                                  "education", "native-country"};
  Oracle o = BuildOracle(a, qis);
  ASSERT_EQ(o.nodes.size(), 720u);
  for (int k : {2, 5, 10, 50}) {
    for (double limit : {0.0, 0.01, 0.04, 0.1}) ExpectSameOptimum(a, o, qis, k, limit);
  }
}

// Models with a sensitive attribute, pruned against prune=false (every node
// from the bottom table, no tags, no intermediate tables).
void ExpectPrunedEqualsExhaustive(const PrivacyModels& m, Objective objective) {
  const Adult& a = SharedAdult();
  std::vector<std::string> qis = {"sex",       "age",           "race", "marital-status",
                                  "education", "native-country"};
  const Column& occ = a.table.column(a.table.Find("occupation"));
  std::vector<uint32_t> counts(occ.dict.size(), 0);
  for (uint32_t c : occ.codes) ++counts[c];
  ClassChecker checker(m, counts, {}, false);
  SearchInput in = AdultInput(a, m, qis, objective);
  in.sensitive = &occ.codes;
  in.sensitive_values = static_cast<uint32_t>(occ.dict.size());
  in.checker = &checker;
  SearchInput in2 = in;
  auto pruned = std::move(*LatticeSearch::Create(std::move(in)));
  auto full = std::move(*LatticeSearch::Create(std::move(in2)));
  SearchResult p = pruned->Run();
  SearchOptions brute;
  brute.prune = false;
  SearchResult f = full->Run(brute);
  ASSERT_EQ(p.found, f.found);
  EXPECT_EQ(f.evaluated, 720u);
  if (!f.found) return;
  EXPECT_EQ(p.best.levels, f.best.levels);
  EXPECT_DOUBLE_EQ(p.best.objective, f.best.objective);
  EXPECT_EQ(p.best.suppressed, f.best.suppressed);
}

TEST(LatticeTest, DistinctLDiversityMatchesExhaustive) {
  PrivacyModels m;
  m.k = 3;
  m.l = LDiversity{"occupation", LDiversity::Kind::kDistinct, 4, 1};
  m.suppression_limit = 0.05;
  ExpectPrunedEqualsExhaustive(m, Objective::kNonUniformEntropy);
}

TEST(LatticeTest, EntropyLDiversityMatchesExhaustive) {
  PrivacyModels m;
  m.k = 2;
  m.l = LDiversity{"occupation", LDiversity::Kind::kEntropy, 3, 1};
  m.suppression_limit = 0.04;
  ExpectPrunedEqualsExhaustive(m, Objective::kNonUniformEntropy);
}

TEST(LatticeTest, RecursiveLDiversityMatchesExhaustive) {
  PrivacyModels m;
  m.l = LDiversity{"occupation", LDiversity::Kind::kRecursive, 3, 2};
  m.suppression_limit = 0.04;
  ExpectPrunedEqualsExhaustive(m, Objective::kNonUniformEntropy);
}

TEST(LatticeTest, TClosenessMatchesExhaustive) {
  PrivacyModels m;
  m.k = 5;
  m.t = TCloseness{"occupation", 0.3, TCloseness::Distance::kEqual};
  m.suppression_limit = 0.04;
  ExpectPrunedEqualsExhaustive(m, Objective::kNonUniformEntropy);
}

TEST(LatticeTest, LossAndDiscernibilityObjectivesMatchExhaustive) {
  PrivacyModels m;
  m.k = 5;
  m.l = LDiversity{"occupation", LDiversity::Kind::kDistinct, 2, 1};
  m.suppression_limit = 0.02;
  ExpectPrunedEqualsExhaustive(m, Objective::kLoss);
  ExpectPrunedEqualsExhaustive(m, Objective::kDiscernibility);
}

// A hand-built table: 2 columns, known classes and optimum.
TEST(LatticeTest, SmallTableKnownOptimum) {
  // zip (prefix) and age (intervals of 10, then 100).
  std::vector<std::string> zips = {"02139", "02138", "02139", "02141", "02142", "02141"};
  std::vector<std::string> ages = {"31", "35", "38", "52", "55", "58"};
  TableBuilder b({"zip", "age"});
  for (size_t i = 0; i < zips.size(); ++i) ASSERT_TRUE(b.AddRow({zips[i], ages[i]}));
  Table t = b.Finish();
  HierarchySpec prefix;
  prefix.kind = HierarchySpec::Kind::kPrefix;
  HierarchySpec intervals;
  intervals.kind = HierarchySpec::Kind::kIntervals;
  intervals.widths = {10, 100};
  auto hz = BuildHierarchy(prefix, t.column(0).dict, "zip");
  auto ha = BuildHierarchy(intervals, t.column(1).dict, "age");
  ASSERT_TRUE(hz && ha);
  EXPECT_EQ(hz->height(), 5);
  EXPECT_EQ(ha->height(), 2);  // [30, 40) -> [0, 100), already a single label
  SearchInput in;
  in.qis = {{"zip", &t.column(0).codes, &*hz}, {"age", &t.column(1).codes, &*ha}};
  in.models.k = 3;
  auto s = std::move(*LatticeSearch::Create(in));
  SearchResult r = s->Run();
  ASSERT_TRUE(r.found);
  // 0213* / 0214* with exact ages fails; 0213*/0214* with decades gives two classes of 3.
  // Zip level 1 keeps both groups apart and age level 1 is cheaper than zip level 2.
  EXPECT_EQ(r.best.levels, (std::vector<int>{1, 1}));
  EXPECT_EQ(r.best.suppressed, 0u);
  EXPECT_EQ(s->ClassSizes({1, 1}), (std::vector<uint64_t>{3, 3}));
  // With one record allowed to go, nothing better exists (classes are 1-2 otherwise).
  in.models.suppression_limit = 1.0 / 6;
  auto s2 = std::move(*LatticeSearch::Create(in));
  EXPECT_EQ(s2->Run().best.levels, (std::vector<int>{1, 1}));
  // Suppressing everything is allowed at limit 1: the bottom wins, all records suppressed.
  in.models.suppression_limit = 1.0;
  auto s3 = std::move(*LatticeSearch::Create(in));
  SearchResult r3 = s3->Run();
  EXPECT_EQ(r3.best.levels, (std::vector<int>{0, 0}));
  EXPECT_EQ(r3.best.suppressed, 6u);
  EXPECT_EQ(s3->SuppressedRecords({0, 0}), std::vector<uint8_t>(6, 1));
}

TEST(LatticeTest, ClassSizesMatchDirectGrouping) {
  const Adult& a = SharedAdult();
  PrivacyModels m;
  auto s = std::move(*LatticeSearch::Create(AdultInput(a, m)));
  for (const std::vector<int>& lv : std::vector<std::vector<int>>{
           {0, 0, 0, 0, 0, 0, 0, 0, 0}, {1, 2, 0, 1, 2, 1, 0, 2, 1}, {0, 4, 1, 2, 3, 2, 2, 2, 0}}) {
    std::map<std::string, uint64_t> direct;
    for (size_t r = 0; r < a.table.num_rows(); ++r) {
      std::string key;
      for (size_t c = 0; c < 9; ++c)
        key += a.hierarchies[c].Label(lv[c], a.table.column(c).codes[r]) + "|";
      ++direct[key];
    }
    std::vector<uint64_t> expect;
    for (auto& [k, v] : direct) expect.push_back(v);
    std::vector<uint64_t> got = s->ClassSizes(lv);
    std::sort(expect.begin(), expect.end());
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, expect);
  }
}

TEST(LatticeTest, UnsatisfiableReportsNotFound) {
  PrivacyModels m;
  m.k = 40000;  // more than the records
  auto s = std::move(*LatticeSearch::Create(AdultInput(SharedAdult(), m)));
  EXPECT_FALSE(s->Run().found);
}

TEST(LatticeTest, TenfoldAdultWithTenfoldKHasTheSameOptimum) {
  Adult a = LoadAdult(9);
  ASSERT_EQ(a.table.num_rows(), 301620u);
  PrivacyModels m;
  m.k = 50;
  m.suppression_limit = 0.04;
  auto s = std::move(*LatticeSearch::Create(AdultInput(a, m)));
  SearchResult r = s->Run();
  ASSERT_TRUE(r.found);
  EXPECT_EQ(r.best.levels, (std::vector<int>{1, 0, 1, 1, 3, 2, 2, 0, 1}));
  EXPECT_EQ(r.best.suppressed, 9060u);
  EXPECT_NEAR(r.best.non_uniform_entropy, 10 * 255559.85455731067, 1e-3);
}

}  // namespace
}  // namespace cr::anonymize
