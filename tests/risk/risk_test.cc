// Risk metrics on releases whose answers are known by hand, and on Adult.
#include "risk/risk.h"

#include <gtest/gtest.h>

#include <cmath>

#include "anonymize/table.h"

namespace cr::risk {
namespace {

using anonymize::ReadCsv;
using anonymize::ReadTableFile;
using anonymize::Table;

// Classes on (age, zip): {1,2,3} size 3, {4,5} size 2, {6} size 1.
constexpr const char* kRelease =
    "id,age,zip,disease\n"
    "r1,30-39,021**,flu\n"
    "r2,30-39,021**,flu\n"
    "r3,30-39,021**,cold\n"
    "r4,40-49,021**,flu\n"
    "r5,40-49,021**,flu\n"
    "r6,50-59,022**,cancer\n";

Table Release() {
  auto t = ReadCsv(kRelease);
  EXPECT_TRUE(t.has_value());
  return std::move(*t);
}

TEST(GroupRecordsTest, DenseInFirstAppearanceOrder) {
  std::vector<uint32_t> a = {0, 1, 0, 1, 0}, b = {2, 2, 2, 3, 2};
  Grouping g = GroupRecords({&a, &b}, 5);
  EXPECT_EQ(g.class_of, (std::vector<uint32_t>{0, 1, 0, 2, 0}));
  EXPECT_EQ(g.sizes, (std::vector<uint64_t>{3, 1, 1}));
  EXPECT_EQ(g.first_row, (std::vector<uint32_t>{0, 1, 3}));
}

TEST(GroupRecordsTest, WideCodesAreRedensifiedNotTruncated) {
  // Three columns of ~2^31 codes need 93 bits: the key must be re-densified.
  const uint32_t big = 0x7fffffffu;
  std::vector<uint32_t> a = {big, big, big, 0}, b = {big, big, 0, 0}, c = {big, 1, big, big};
  Grouping g = GroupRecords({&a, &b, &c}, 4);
  EXPECT_EQ(g.sizes.size(), 4u);
  std::vector<uint32_t> d = {big, big, big, big};
  g = GroupRecords({&a, &a, &a, &d}, 4);
  EXPECT_EQ(g.sizes, (std::vector<uint64_t>{3, 1}));
}

TEST(RiskTest, HandComputedRelease) {
  RiskOptions opt;
  opt.qis = {"age", "zip"};
  opt.sensitive = "disease";
  auto r = AnalyzeRisk(Release(), opt);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->records, 6u);
  EXPECT_EQ(r->classes, 3u);
  EXPECT_EQ(r->k, 1u);
  EXPECT_EQ(r->sample_uniques, 1u);
  EXPECT_DOUBLE_EQ(r->sample_uniqueness, 1.0 / 6);
  EXPECT_DOUBLE_EQ(r->prosecutor_max, 1.0);
  EXPECT_DOUBLE_EQ(r->prosecutor_avg, 0.5);
  EXPECT_DOUBLE_EQ(r->journalist_max, 1.0);
  EXPECT_DOUBLE_EQ(r->marketer, 0.5);
  EXPECT_EQ(r->records_at_risk, 6u);  // every class is smaller than 5
  ASSERT_TRUE(r->sensitive.has_value());
  EXPECT_EQ(r->sensitive->distinct_l, 1u);
  EXPECT_DOUBLE_EQ(r->sensitive->entropy_l, 1.0);
  // The lone cancer record: half of |1 - 1/6| + the 5/6 its class lacks.
  EXPECT_NEAR(r->sensitive->t, 5.0 / 6, 1e-12);
  EXPECT_FALSE(r->sensitive->ordered);
  EXPECT_EQ(r->sensitive->homogeneous_classes, 2u);
  EXPECT_EQ(r->sensitive->homogeneous_records, 3u);
  EXPECT_EQ(r->class_size_histogram,
            (std::vector<std::pair<uint64_t, uint64_t>>{{1, 1}, {2, 1}, {3, 1}}));
}

TEST(RiskTest, ThresholdCountsRecordsAbove) {
  RiskOptions opt;
  opt.qis = {"age", "zip"};
  opt.threshold = 0.4;  // 1/3 is below, 1/2 and 1 above
  auto r = AnalyzeRisk(Release(), opt);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->records_at_risk, 3u);
  EXPECT_DOUBLE_EQ(r->records_at_risk_share, 0.5);
}

TEST(RiskTest, EntropyLOfAMixedClass) {
  auto t = ReadCsv("q,s\na,x\na,y\nb,x\nb,x\nb,y\nb,y\n");
  ASSERT_TRUE(t.has_value());
  RiskOptions opt;
  opt.qis = {"q"};
  opt.sensitive = "s";
  auto r = AnalyzeRisk(*t, opt);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->sensitive->distinct_l, 2u);
  EXPECT_NEAR(r->sensitive->entropy_l, 2.0, 1e-12);  // both classes split evenly
  EXPECT_NEAR(r->sensitive->t, 0.0, 1e-12);
}

TEST(RiskTest, OrderedClosenessForNumbers) {
  // Global {1,2,3} uniform; class a = {1}: cumulative diffs 2/3, 1/3 over 2.
  auto t = ReadCsv("q,s\na,1\nb,2\nb,3\n");
  ASSERT_TRUE(t.has_value());
  RiskOptions opt;
  opt.qis = {"q"};
  opt.sensitive = "s";
  auto r = AnalyzeRisk(*t, opt);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->sensitive->ordered);
  EXPECT_NEAR(r->sensitive->t, 0.5, 1e-12);
}

TEST(RiskTest, ErrorsNameTheProblem) {
  RiskOptions opt;
  opt.qis = {"age", "nope"};
  auto r = AnalyzeRisk(Release(), opt);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::UNKNOWN_COLUMN);
  opt.qis = {"age"};
  opt.sensitive = "age";
  EXPECT_EQ(AnalyzeRisk(Release(), opt).error().code, ErrorCode::BAD_INPUT);
  opt.sensitive = "";
  opt.population = 3;
  EXPECT_EQ(AnalyzeRisk(Release(), opt).error().code, ErrorCode::BAD_INPUT);
  opt.population.reset();
  opt.threshold = 2;
  EXPECT_EQ(AnalyzeRisk(Release(), opt).error().code, ErrorCode::BAD_INPUT);
  opt.threshold = 0.2;
  opt.qis = {};
  EXPECT_EQ(AnalyzeRisk(Release(), opt).error().code, ErrorCode::BAD_INPUT);
}

// The library names its parameters, never the command-line flags that set
// them (the command layer adds those): a library caller has no --qi.
TEST(RiskTest, ErrorsNameParametersNotFlags) {
  auto message = [](const RiskOptions& opt) {
    auto r = AnalyzeRisk(Release(), opt);
    EXPECT_FALSE(r.has_value());
    return r ? std::string() : r.error().message;
  };
  RiskOptions opt;
  opt.qis = {"age", "nope"};
  std::vector<std::string> messages = {message(opt)};
  EXPECT_EQ(messages.back(), "quasi-identifiers: no column nope");
  opt.qis = {"age"};
  opt.sensitive = "age";
  messages.push_back(message(opt));
  EXPECT_EQ(messages.back(), "sensitive attribute age is also a quasi-identifier");
  opt.sensitive = "";
  opt.population = 3;
  messages.push_back(message(opt));
  EXPECT_EQ(messages.back(), "the population size (3) is smaller than the number of records (6)");
  opt.population.reset();
  opt.threshold = 2;
  messages.push_back(message(opt));
  EXPECT_EQ(messages.back(), "risk: the threshold must be in [0, 1] (is 2)");
  for (const auto& m : messages) EXPECT_EQ(m.find("--"), std::string::npos) << m;
}

TEST(PopulationTest, ZayatzByHand) {
  // Sizes {1:2, 2:1}, n = 4, N = 8. P(1 | size 1) = 1/2, P(1 | size 2) =
  // 2*C(6,3)/C(8,4) = 4/7, so P(pop unique | sample unique) = 7/11 and the
  // estimate is 2 * 7/11 / (4/8) = 28/11.
  EXPECT_NEAR(ZayatzUniques({{1, 2}, {2, 1}}, 4, 8), 28.0 / 11, 1e-9);
  // The release is the population: every sample unique is a population unique.
  EXPECT_DOUBLE_EQ(ZayatzUniques({{1, 2}, {2, 1}}, 4, 4), 2.0);
}

TEST(PopulationTest, JournalistScalesWithSamplingFraction) {
  RiskOptions opt;
  opt.qis = {"age", "zip"};
  opt.population = 60;
  auto r = AnalyzeRisk(Release(), opt);
  ASSERT_TRUE(r.has_value());
  EXPECT_DOUBLE_EQ(r->journalist_max, 0.1);
  EXPECT_DOUBLE_EQ(r->journalist_avg, 0.05);
  ASSERT_TRUE(r->population.has_value());
  EXPECT_DOUBLE_EQ(r->population->sampling_fraction, 0.1);
}

std::string AdultPath() { return std::string(CLEANROOM_DATA_DIR) + "/adult/adult.csv"; }
const std::vector<std::string> kAdultQis = {
    "sex",       "age",        "race",        "marital-status", "education", "native-country",
    "workclass", "occupation", "salary-class"};

TEST(AdultTest, SampleUniquesOnAllNineColumns) {
  auto t = ReadTableFile(AdultPath());
  ASSERT_TRUE(t.has_value()) << t.error().ToString();
  RiskOptions opt;
  opt.qis = kAdultQis;
  auto r = AnalyzeRisk(*t, opt);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->records, 30162u);
  EXPECT_EQ(r->sample_uniques, 15512u);
  EXPECT_NEAR(r->sample_uniqueness, 0.5143, 0.00005);
  EXPECT_EQ(r->k, 1u);
}

TEST(AdultTest, PopulationModelsArePlausible) {
  auto t = ReadTableFile(AdultPath());
  ASSERT_TRUE(t.has_value());
  RiskOptions opt;
  opt.qis = kAdultQis;
  opt.population = 301620;  // a 10% sample
  auto r = AnalyzeRisk(*t, opt);
  ASSERT_TRUE(r.has_value());
  const auto& p = *r->population;
  // Each model must land between 0 and the population, and below the naive
  // upper bound "every sample unique stands for 1/fraction population uniques".
  // Pitman's MLE cross-checked by maximising the log-likelihood of the
  // Pitman sampling formula directly (ternary search, no derivatives): the
  // fit is theta = 3176.2, alpha = 0.71795 and 83503.7 population uniques.
  EXPECT_NEAR(p.pitman, 83503.6, 1.0);
  for (double u : {p.zayatz, p.pitman, p.snb}) {
    ASSERT_TRUE(std::isfinite(u));
    EXPECT_GT(u, 0);
    EXPECT_LT(u, 15512.0 * 10);
  }
}

TEST(AdultTest, EstimatesApproachSampleUniquesAsTheSampleBecomesThePopulation) {
  auto t = ReadTableFile(AdultPath());
  ASSERT_TRUE(t.has_value());
  RiskOptions opt;
  opt.qis = kAdultQis;
  opt.population = 30163;  // one person outside the sample
  auto r = AnalyzeRisk(*t, opt);
  ASSERT_TRUE(r.has_value());
  EXPECT_NEAR(r->population->zayatz, 15512, 1);
  EXPECT_NEAR(r->population->snb, 15512, 1);
  // Pitman is a fitted model, not an identity at fraction 1: within 5%.
  EXPECT_NEAR(r->population->pitman, 15512, 0.05 * 15512);
  // Fewer uniques in a larger population, for every model.
  opt.population = 301620;
  auto big = AnalyzeRisk(*t, opt);
  ASSERT_TRUE(big.has_value());
  EXPECT_LT(big->population->zayatz / 301620, r->population->zayatz / 30163);
  EXPECT_LT(big->population->pitman / 301620, r->population->pitman / 30163);
  EXPECT_LT(big->population->snb / 301620, r->population->snb / 30163);
}

}  // namespace
}  // namespace cr::risk
