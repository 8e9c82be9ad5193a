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
  ClassChecker checker = *ClassChecker::Create(m, counts, {}, false);
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


// Bad inputs given to the search directly (not through the config): each is
// refused where the search is built, naming what is wrong.
class LatticeValidationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HierarchySpec prefix;
    prefix.kind = HierarchySpec::Kind::kPrefix;
    h_ = *BuildHierarchy(prefix, {"021", "022"}, "zip");
    codes_ = {0, 1, 0, 1};
    in_.qis = {{"zip", &codes_, &h_}};
    in_.models.k = 2;
  }

  void ExpectBad(const SearchInput& in, const std::string& names) {
    auto s = LatticeSearch::Create(in);
    ASSERT_FALSE(s) << names;
    EXPECT_EQ(s.error().code, ErrorCode::BAD_INPUT);
    EXPECT_NE(s.error().message.find(names), std::string::npos) << s.error().message;
  }

  Hierarchy h_;
  std::vector<uint32_t> codes_;
  SearchInput in_;
};

TEST_F(LatticeValidationTest, AValidInputIsAccepted) {
  auto s = LatticeSearch::Create(in_);
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_TRUE((*s)->Run().found);
}

TEST_F(LatticeValidationTest, ModelParameters) {
  SearchInput in = in_;
  in.models.k = 0;
  ExpectBad(in, "k must be at least 1");
  in = in_;
  in.models.suppression_limit = 1.2;
  ExpectBad(in, "suppression limit must be a share in [0, 1]");
  in = in_;
  in.models.l = LDiversity{"d", LDiversity::Kind::kDistinct, 0, 1};
  ExpectBad(in, "l must be at least 1");
  in = in_;
  in.models.t = TCloseness{"d", 2, TCloseness::Distance::kEqual};
  ExpectBad(in, "t must be in [0, 1]");
}

TEST_F(LatticeValidationTest, InputsMustBePresent) {
  SearchInput in = in_;
  in.qis.clear();
  ExpectBad(in, "no quasi-identifiers");
  in = in_;
  in.qis[0].codes = nullptr;
  ExpectBad(in, "quasi-identifier zip needs codes and a hierarchy");
  in = in_;
  in.qis[0].hierarchy = nullptr;
  ExpectBad(in, "quasi-identifier zip needs codes and a hierarchy");
  std::vector<uint32_t> none;
  in = in_;
  in.qis[0].codes = &none;
  ExpectBad(in, "no records");
  // l-diversity without the sensitive codes would check nothing but k.
  in = in_;
  in.models.l = LDiversity{"d", LDiversity::Kind::kDistinct, 2, 1};
  ExpectBad(in, "the models need the codes of d");
  std::vector<uint32_t> sensitive = {0, 1, 0, 1};
  in.sensitive = &sensitive;
  in.sensitive_values = 2;
  ExpectBad(in, "a sensitive attribute needs a class checker");
}

TEST_F(LatticeValidationTest, LengthsAndCodesMustAgree) {
  std::vector<uint32_t> shorter = {0, 1, 0};
  SearchInput in = in_;
  in.qis.push_back({"age", &shorter, &h_});
  ExpectBad(in, "quasi-identifier age has 3 records, zip has 4");
  std::vector<uint32_t> outside = {0, 1, 2, 1};
  in = in_;
  in.qis[0].codes = &outside;
  ExpectBad(in, "quasi-identifier zip has a code its hierarchy does not cover");
  Hierarchy broken = h_;
  broken.levels[1].of_value.pop_back();
  in = in_;
  in.qis[0].hierarchy = &broken;
  ExpectBad(in, "the hierarchy of zip does not map each of its 2 values");
  PrivacyModels m;
  m.k = 2;
  m.l = LDiversity{"d", LDiversity::Kind::kDistinct, 2, 1};
  ClassChecker checker = *ClassChecker::Create(m, {2, 2}, {}, false);
  std::vector<uint32_t> sensitive = {0, 1, 0};
  in = in_;
  in.models = m;
  in.checker = &checker;
  in.sensitive = &sensitive;
  in.sensitive_values = 2;
  ExpectBad(in, "the sensitive attribute has 3 records, the quasi-identifiers 4");
  sensitive = {0, 1, 0, 2};
  ExpectBad(in, "a sensitive code is not below sensitive_values (2)");
  sensitive = {0, 1, 0, 1};
  EXPECT_TRUE(LatticeSearch::Create(in));
}

TEST(LatticeTest, NotFoundReportsTheLeastSuppression) {
  // Four records and k=5: every node, even the top (one class of all four),
  // would have to suppress all of them.
  std::vector<uint32_t> codes = {0, 0, 0, 1};
  Hierarchy h = *HierarchyFromChains({"a", "b"}, {{"a"}, {"b"}}, "zip");
  SearchInput in;
  in.qis = {{"zip", &codes, &h}};
  in.models.k = 5;  // more than the records: nothing helps
  auto s = std::move(*LatticeSearch::Create(in));
  SearchResult r = s->Run();
  ASSERT_FALSE(r.found);
  EXPECT_EQ(r.least_suppressed, 4u);
}

}  // namespace
}  // namespace cr::anonymize
