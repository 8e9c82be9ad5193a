// The whole pipeline on Adult through files: output, report, verification,
// and nothing written on failure.
#include "anonymize/anonymizer.h"

#include <gtest/gtest.h>

#include "common/files.h"
#include "testing/temp_dir.h"

namespace cr::anonymize {
namespace {

using cr::testing::Slurp;
using cr::testing::Spit;
using cr::testing::TempDir;

std::string AdultDir() { return std::string(CLEANROOM_DATA_DIR) + "/adult"; }

std::string AdultConfig(const std::string& privacy, const std::string& extra = "") {
  std::string y = "quasi_identifiers:\n";
  for (const char* c : {"sex", "age", "race", "marital-status", "education", "native-country",
                        "workclass", "occupation"}) {
    y += fmt::format("  {}: {{hierarchy: {}/adult_hierarchy_{}.csv}}\n", c, AdultDir(), c);
  }
  return y + "sensitive:\n  salary-class: {}\nprivacy:\n" + privacy + extra;
}

TEST(AnonymizerTest, ReleasesAdultWithKAndLAndVerifies) {
  TempDir dir;
  Spit(dir / "anon.yaml", AdultConfig("  k: 5\n  l: {attribute: salary-class, kind: distinct, l: "
                                      "2}\n  suppression_limit: 0.04\n"));
  RunPaths p{dir / "anon.yaml", AdultDir() + "/adult.csv", dir / "out.csv", dir / "report.json"};
  auto rel = RunAnonymize(p);
  ASSERT_TRUE(rel) << rel.error().ToString();
  auto report = nlohmann::json::parse(Slurp(dir / "report.json"));
  EXPECT_TRUE(report["verified"].get<bool>());
  EXPECT_EQ(report["records_in"], 30162);
  EXPECT_LE(report["suppressed"].get<int>(), 1206);
  EXPECT_GE(report["classes"]["min_size"].get<int>(), 5);
  EXPECT_LE(report["risk_after"]["prosecutor_max"].get<double>(), 0.2);
  EXPECT_NEAR(report["risk_before"]["sample_uniques"].get<double>(), 0.43, 0.1);
  for (const char* k : {"non_uniform_entropy", "loss", "discernibility", "avg_class_size"}) {
    EXPECT_TRUE(report["metrics"].contains(k)) << k;
  }
  EXPECT_EQ(report["levels"].size(), 8u);
  EXPECT_TRUE(report["models"]["l_diversity"]["satisfied"].get<bool>());
  // The written file is the released table; only the staging file is gone.
  auto out = ReadTableFile(dir / "out.csv");
  ASSERT_TRUE(out);
  EXPECT_EQ(out->num_rows(), 30162u);
  EXPECT_EQ(cr::testing::Snapshot(dir.path()).size(), 3u);
}

TEST(AnonymizerTest, ReproducesArxOptimumThroughThePipeline) {
  TempDir dir;
  std::string y = "separator: \";\"\nquasi_identifiers:\n";
  for (const char* c : {"sex", "age", "race", "marital-status", "education", "native-country",
                        "workclass", "occupation", "salary-class"}) {
    y += fmt::format("  {}: {{hierarchy: {}/adult_hierarchy_{}.csv}}\n", c, AdultDir(), c);
  }
  y += "privacy: {k: 5, suppression_limit: 0.04}\nsuppressed: drop\n";
  Spit(dir / "anon.yaml", y);
  auto rel =
      RunAnonymize({dir / "anon.yaml", AdultDir() + "/adult.csv", dir / "out.csv", dir / "r.json"});
  ASSERT_TRUE(rel) << rel.error().ToString();
  const auto& r = rel->report;
  EXPECT_EQ(r["levels"]["education"], 3);
  EXPECT_EQ(r["levels"]["age"], 0);
  EXPECT_EQ(r["suppressed"], 906);
  EXPECT_EQ(r["records_out"], 30162 - 906);
  EXPECT_NEAR(r["metrics"]["non_uniform_entropy"].get<double>(), 255559.85455731067, 1e-3);
  EXPECT_EQ(r["risk_after"]["prosecutor_max"].get<double>(), 0.2);
}

TEST(AnonymizerTest, UnsatisfiableWritesNothing) {
  TempDir dir;
  Spit(dir / "anon.yaml",
       AdultConfig("  k: 5\n  l: {attribute: salary-class, kind: distinct, l: 3}\n"));
  auto rel =
      RunAnonymize({dir / "anon.yaml", AdultDir() + "/adult.csv", dir / "out.csv", dir / "r.json"});
  ASSERT_FALSE(rel);
  EXPECT_EQ(rel.error().code, ErrorCode::THRESHOLD_NOT_MET);
  EXPECT_EQ(cr::testing::Snapshot(dir.path()).size(), 1u);  // only the config
}

TEST(AnonymizerTest, BadConfigAndUnknownColumnsAreBadInput) {
  TempDir dir;
  Spit(dir / "a.yaml", "quasi_identifiers: {nope: {generalize: prefix}}\n");
  auto rel = RunAnonymize({dir / "a.yaml", AdultDir() + "/adult.csv", dir / "out.csv", ""});
  ASSERT_FALSE(rel);
  EXPECT_EQ(rel.error().code, ErrorCode::BAD_INPUT);
  Spit(dir / "b.yaml", "quasi_identifiers: {age: {hierarchy: missing.csv}}\n");
  rel = RunAnonymize({dir / "b.yaml", AdultDir() + "/adult.csv", dir / "out.csv", ""});
  ASSERT_FALSE(rel);
  EXPECT_EQ(ExitCode(rel.error().code), 7);
  EXPECT_FALSE(PathExists(dir / "out.csv"));
}

// A small table through every transform family, with a seeded source.
class CountingRandom final : public RandomSource {
 public:
  uint64_t Next64() override { return (x_ += 0x9E3779B97F4A7C15ULL) * 0xBF58476D1CE4E5B9ULL; }

 private:
  uint64_t x_ = 1;
};

TEST(AnonymizerTest, TransformsOnASmallTable) {
  TempDir dir;
  std::string csv = "name,phone,ssn,zip,age,diagnosis,salary,city,region\n";
  const char* diags[] = {"flu", "cold", "asthma"};
  for (int i = 0; i < 60; ++i) {
    csv += fmt::format("person{},555-01{:02d},{:09d},0213{},{},{},{},city{},{}\n", i, i, i * 7919,
                       i % 3, 30 + i % 20, diags[i % 3], 40000 + 100 * i, i % 5,
                       i % 2 ? "north" : "south");
  }
  Spit(dir / "in.csv", csv);
  ASSERT_TRUE(crypto::Init());
  ASSERT_TRUE(crypto::WriteNewSharedSecret(dir / "shared.secret"));
  Spit(dir / "anon.yaml", R"(
quasi_identifiers:
  zip: {generalize: prefix}
  age: {generalize: intervals, widths: [5, 10, 20], top_code: 45}
sensitive:
  diagnosis: {}
identifiers:
  name:  {transform: pseudonymize, secret: shared.secret}
  phone: {transform: {mask: {keep_last: 2}}}
  ssn:   {transform: drop}
attributes:
  salary: {transform: noise, mechanism: laplace, scale: 500}
  city:   {transform: swap, swap: random, within: [region]}
privacy:
  k: 4
  l: {attribute: diagnosis, kind: distinct, l: 2}
  suppression_limit: 0.1
)");
  CountingRandom rnd;
  AnonymizeOptions opt;
  opt.random = &rnd;
  auto rel =
      RunAnonymize({dir / "anon.yaml", dir / "in.csv", dir / "out.csv", dir / "r.json"}, opt);
  ASSERT_TRUE(rel) << rel.error().ToString();
  auto out = ReadTableFile(dir / "out.csv");
  ASSERT_TRUE(out);
  EXPECT_LT(out->Find("ssn"), 0);
  int name = out->Find("name"), phone = out->Find("phone");
  ASSERT_GE(name, 0);
  for (size_t r = 0; r < out->num_rows(); ++r) {
    EXPECT_EQ(out->column(name).Value(r).size(), 32u);
    EXPECT_EQ(out->column(phone).Value(r).substr(0, 6), "******");
  }
  EXPECT_EQ(rel->report["transforms"]["ssn"], "drop");
  EXPECT_TRUE(rel->report["verified"].get<bool>());
}

}  // namespace
}  // namespace cr::anonymize
