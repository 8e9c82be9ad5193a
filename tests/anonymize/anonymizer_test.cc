// The whole pipeline on Adult through files: output, report, verification,
// and nothing written on failure.
#include "anonymize/anonymizer.h"

#include <gtest/gtest.h>

#include "anonymize/hierarchy.h"
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
  region: {transform: keep}
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

namespace cr::anonymize {
namespace {

// The attack of issue 9: a config naming only `zip` used to release the
// direct identifiers next to it unchanged.
std::string PeopleCsv() {
  std::string csv = "name,ssn,phone,zip\n";
  for (int i = 0; i < 20; ++i) {
    csv += fmt::format("person{},{:09d},555-01{:02d},0213{}\n", i, 100000 + i, i, i % 2);
  }
  return csv;
}

TEST(AnonymizerTest, ColumnsWithoutATreatmentAreRefusedByName) {
  TempDir dir;
  Spit(dir / "in.csv", PeopleCsv());
  Spit(dir / "anon.yaml", "quasi_identifiers: {zip: {generalize: prefix}}\nprivacy: {k: 2}\n");
  auto before = cr::testing::Snapshot(dir.path());
  auto rel = RunAnonymize({dir / "anon.yaml", dir / "in.csv", dir / "out.csv", dir / "r.json"});
  ASSERT_FALSE(rel);
  EXPECT_EQ(rel.error().code, ErrorCode::BAD_INPUT);
  EXPECT_NE(rel.error().message.find("3 input column(s) have no treatment"), std::string::npos)
      << rel.error().message;
  EXPECT_NE(rel.error().message.find("name, ssn, phone"), std::string::npos)
      << rel.error().message;
  EXPECT_NE(rel.error().message.find("others: remove"), std::string::npos);
  EXPECT_EQ(cr::testing::Snapshot(dir.path()), before);  // no output, no report
}

TEST(AnonymizerTest, OthersRemoveReleasesOnlyTheDeclaredColumns) {
  TempDir dir;
  Spit(dir / "in.csv", PeopleCsv());
  Spit(dir / "anon.yaml",
       "quasi_identifiers: {zip: {generalize: prefix}}\nidentifiers: {phone: {transform: "
       "redact}}\nprivacy: {k: 2}\nothers: remove\n");
  auto rel = RunAnonymize({dir / "anon.yaml", dir / "in.csv", dir / "out.csv", dir / "r.json"});
  ASSERT_TRUE(rel) << rel.error().ToString();
  auto out = ReadTableFile(dir / "out.csv");
  ASSERT_TRUE(out);
  ASSERT_EQ(out->num_columns(), 2u);
  EXPECT_EQ(out->column(0).name, "phone");
  EXPECT_EQ(out->column(1).name, "zip");
  EXPECT_EQ(rel->report["removed"], nlohmann::json({"name", "ssn"}));
  EXPECT_NE(rel->summary.find("removed (no treatment, others: remove): name, ssn"),
            std::string::npos)
      << rel->summary;
  std::string written = Slurp(dir / "out.csv");
  EXPECT_EQ(written.find("person"), std::string::npos);
  EXPECT_EQ(written.find("100000"), std::string::npos);
}

TEST(AnonymizerTest, DeclaredColumnsMissingFromTheInputAreNamed) {
  TempDir dir;
  Spit(dir / "in.csv", PeopleCsv());
  Spit(dir / "anon.yaml",
       "quasi_identifiers: {zip: {generalize: prefix}, postcode: {generalize: prefix}}\n"
       "attributes: {city: {transform: swap, within: [region]}}\nothers: remove\n");
  auto rel = RunAnonymize({dir / "anon.yaml", dir / "in.csv", dir / "out.csv", ""});
  ASSERT_FALSE(rel);
  EXPECT_EQ(rel.error().code, ErrorCode::BAD_INPUT);
  EXPECT_NE(rel.error().message.find("3 column(s) the input does not have: postcode, city, region"),
            std::string::npos)
      << rel.error().message;
  EXPECT_FALSE(PathExists(dir / "out.csv"));
}

TEST(AnonymizerTest, AHierarchyFileMissingValuesNamesTheFirstFive) {
  TempDir dir;
  std::string csv = "city,zip\n", hierarchy;
  for (int i = 0; i < 12; ++i) {
    csv += fmt::format("c{},0213{}\n", i, i % 2);
    if (i < 5) hierarchy += fmt::format("c{};region;*\n", i);
  }
  Spit(dir / "in.csv", csv);
  Spit(dir / "city.csv", hierarchy);
  Spit(dir / "anon.yaml",
       "quasi_identifiers:\n  city: {hierarchy: city.csv}\n  zip: {generalize: prefix}\n");
  auto rel = RunAnonymize({dir / "anon.yaml", dir / "in.csv", dir / "out.csv", ""});
  ASSERT_FALSE(rel);
  EXPECT_EQ(rel.error().code, ErrorCode::BAD_INPUT);
  const std::string& m = rel.error().message;
  EXPECT_NE(m.find("column city: 7 distinct value(s) are not in hierarchy file"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("the first of them: 'c5', 'c6', 'c7', 'c8', 'c9'"), std::string::npos) << m;
  EXPECT_EQ(m.find("c10"), std::string::npos) << m;
  // Fewer than the limit: all of them, without "the first of them".
  for (int i = 5; i < 11; ++i) hierarchy += fmt::format("c{};region;*\n", i);
  Spit(dir / "city.csv", hierarchy);
  rel = RunAnonymize({dir / "anon.yaml", dir / "in.csv", dir / "out.csv", ""});
  ASSERT_FALSE(rel);
  EXPECT_NE(rel.error().message.find("1 distinct value(s) are not in hierarchy file " +
                                     (dir / "city.csv") + ": 'c11'"),
            std::string::npos)
      << rel.error().message;
}

TEST(AnonymizerTest, ListedMissingValuesCannotRewriteTheTerminal) {
  TempDir dir;
  Spit(dir / "h.csv", "a;*\n");
  HierarchySpec spec;
  spec.path = dir / "h.csv";
  auto h = BuildHierarchy(spec, {"a", "b\x1b[2J\nc", std::string(50, 'x')}, "col");
  ASSERT_FALSE(h);
  EXPECT_NE(h.error().message.find("'b?[2J?c', '" + std::string(40, 'x') + "...'"),
            std::string::npos)
      << h.error().message;
  EXPECT_EQ(h.error().message.find('\x1b'), std::string::npos);
}

Result<Release> AnonymizeText(const std::string& yaml, const std::string& csv) {
  auto cfg = ParseConfig(yaml, ".");
  if (!cfg) return std::unexpected(cfg.error());
  auto table = ReadCsv(csv);
  if (!table) return std::unexpected(table.error());
  return Anonymize(*cfg, *table);
}

TEST(AnonymizerTest, ThresholdNotMetSaysToLowerK) {
  auto rel = AnonymizeText("quasi_identifiers: {zip: {generalize: prefix}}\nprivacy: {k: 21, "
                           "suppression_limit: 0.5}\nothers: remove\n",
                           PeopleCsv());
  ASSERT_FALSE(rel);
  EXPECT_EQ(rel.error().code, ErrorCode::THRESHOLD_NOT_MET);
  EXPECT_NE(rel.error().message.find("k=21 is more than the 20 records"), std::string::npos)
      << rel.error().message;
  EXPECT_NE(rel.error().message.find("lower k to at most 20 (raising suppression_limit does not "
                                     "help)"),
            std::string::npos)
      << rel.error().message;
  // The advice holds: k=20 is met.
  EXPECT_TRUE(AnonymizeText("quasi_identifiers: {zip: {generalize: prefix}}\nprivacy: {k: "
                            "20}\nothers: remove\n",
                            PeopleCsv()));
}

// zip 0 has two diagnoses half and half, zip 1 only one: every record
// together is too skewed for entropy l=2, but zip 0 alone is diverse enough.
std::string SkewedCsv() {
  std::string csv = "zip,diagnosis\n";
  for (int i = 0; i < 20; ++i) csv += fmt::format("02130,{}\n", i % 2 ? "flu" : "cold");
  for (int i = 0; i < 20; ++i) csv += "02131,flu\n";
  return csv;
}

std::string SkewedConfig(const std::string& privacy) {
  return "quasi_identifiers: {zip: {generalize: prefix}}\nsensitive: {diagnosis: {}}\nprivacy: " +
         privacy + "\n";
}

TEST(AnonymizerTest, ThresholdNotMetSaysToLowerLOrRaiseTheSuppressionLimit) {
  auto rel = AnonymizeText(
      SkewedConfig("{l: {attribute: diagnosis, kind: entropy, l: 2}, suppression_limit: 0.1}"),
      SkewedCsv());
  ASSERT_FALSE(rel);
  EXPECT_EQ(rel.error().code, ErrorCode::THRESHOLD_NOT_MET);
  const std::string& m = rel.error().message;
  // 30 flu, 10 cold: exp(entropy) = 1.7548.
  EXPECT_NE(m.find("entropy l=2 on diagnosis: all records together reach only l=1.754: lower l "
                   "to at most 1.754"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("the best transformation checked needs 50.00% of the records suppressed (20 of "
                   "40): raise suppression_limit to at least 0.5"),
            std::string::npos)
      << m;
  // Each piece of advice is enough on its own.
  EXPECT_TRUE(AnonymizeText(
      SkewedConfig("{l: {attribute: diagnosis, kind: entropy, l: 1.754}, suppression_limit: 0.1}"),
      SkewedCsv()));
  EXPECT_TRUE(AnonymizeText(
      SkewedConfig("{l: {attribute: diagnosis, kind: entropy, l: 2}, suppression_limit: 0.5}"),
      SkewedCsv()));
}

TEST(AnonymizerTest, ThresholdNotMetSaysToLowerDistinctL) {
  auto rel = AnonymizeText(
      SkewedConfig("{l: {attribute: diagnosis, kind: distinct, l: 3}, suppression_limit: 0.2}"),
      SkewedCsv());
  ASSERT_FALSE(rel);
  EXPECT_EQ(rel.error().code, ErrorCode::THRESHOLD_NOT_MET);
  EXPECT_NE(rel.error().message.find("distinct l=3 needs 3 values of diagnosis in every class and "
                                     "the input has 2: lower l to at most 2"),
            std::string::npos)
      << rel.error().message;
}

TEST(AnonymizerTest, ThresholdNotMetSaysToRaiseCOfRecursiveL) {
  // 30 flu against 10 cold: (c, 2)-diversity of all records needs 30 < c * 10.
  auto rel = AnonymizeText(
      SkewedConfig("{l: {attribute: diagnosis, kind: recursive, l: 2, c: 2}}"), SkewedCsv());
  ASSERT_FALSE(rel);
  EXPECT_EQ(rel.error().code, ErrorCode::THRESHOLD_NOT_MET);
  EXPECT_NE(rel.error().message.find("need c above 3: raise c or lower l"), std::string::npos)
      << rel.error().message;
  EXPECT_TRUE(AnonymizeText(
      SkewedConfig("{l: {attribute: diagnosis, kind: recursive, l: 2, c: 3.01}}"), SkewedCsv()));
}

}  // namespace
}  // namespace cr::anonymize
