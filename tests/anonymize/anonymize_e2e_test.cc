// End to end: the built `cleanroom anonymize` on Adult, its files and exit codes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "common/files.h"
#include "testing/temp_dir.h"

namespace cr {
namespace {

using testing::Q;
using testing::RunShell;
using testing::Slurp;
using testing::Spit;
using testing::TempDir;

std::string AdultDir() { return std::string(CLEANROOM_SHARED_DATA) + "/adult"; }

std::string Config(const std::string& privacy) {
  std::string y = "separator: \";\"\nquasi_identifiers:\n";
  for (const char* c : {"sex", "age", "race", "marital-status", "education", "native-country",
                        "workclass", "occupation", "salary-class"}) {
    y +=
        std::string("  ") + c + ": {hierarchy: " + AdultDir() + "/adult_hierarchy_" + c + ".csv}\n";
  }
  return y + privacy;
}

std::string Cmd(const TempDir& d, const std::string& cfg) {
  return std::string(CLEANROOM_BINARY) + " anonymize --config " + Q(d / cfg) + " --input " +
         Q(AdultDir() + "/adult.csv") + " --out " + Q(d / "out.csv") + " --report " +
         Q(d / "report.json");
}

TEST(AnonymizeE2eTest, ReleasesAdult) {
  TempDir d;
  Spit(d / "anon.yaml", Config("privacy: {k: 5, suppression_limit: 0.04}\n"));
  auto r = RunShell(Cmd(d, "anon.yaml"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("suppressed: 906"), std::string::npos) << r.out;
  auto rep = nlohmann::json::parse(Slurp(d / "report.json"));
  EXPECT_EQ(rep["suppressed"], 906);
  EXPECT_EQ(rep["levels"]["education"], 3);
  EXPECT_TRUE(rep["verified"].get<bool>());
  std::string out = Slurp(d / "out.csv");
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 30163);
}

TEST(AnonymizeE2eTest, BadConfigExitsSevenAndWritesNothing) {
  TempDir d;
  Spit(d / "anon.yaml", Config("privacy: {k: five}\n"));
  auto r = RunShell(Cmd(d, "anon.yaml"));
  EXPECT_EQ(r.exit_code, 7) << r.err;
  EXPECT_NE(r.err.find("error[BAD_INPUT]"), std::string::npos) << r.err;
  EXPECT_EQ(testing::Snapshot(d.path()).size(), 1u);
}

TEST(AnonymizeE2eTest, UnsatisfiableExitsThreeAndWritesNothing) {
  TempDir d;
  Spit(d / "anon.yaml", Config("privacy: {k: 100000, suppression_limit: 0.01}\n"));
  auto r = RunShell(Cmd(d, "anon.yaml"));
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("error[THRESHOLD_NOT_MET]"), std::string::npos) << r.err;
  EXPECT_EQ(testing::Snapshot(d.path()).size(), 1u);
}

}  // namespace
}  // namespace cr

namespace cr {
namespace {

// The same release from a Parquet copy of Adult (read through DuckDB) as from the CSV.
TEST(AnonymizeE2eTest, ParquetInputGivesTheSameRelease) {
  testing::TempDir d;
  auto db = engine::Database::Open();
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->Execute("COPY (SELECT * FROM read_csv(" +
                          engine::QuoteLiteral(AdultDir() + "/adult.csv") +
                          ", delim = ';', header = true, all_varchar = true)) TO " +
                          engine::QuoteLiteral(d / "adult.parquet") + " (FORMAT parquet)"));
  testing::Spit(d / "anon.yaml", Config("privacy: {k: 5, suppression_limit: 0.04}\n"));
  auto csv = testing::RunShell(Cmd(d, "anon.yaml"));
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  std::string from_csv = testing::Slurp(d / "out.csv");
  auto pq = testing::RunShell(std::string(CLEANROOM_BINARY) + " anonymize --config " +
                              testing::Q(d / "anon.yaml") + " --input " +
                              testing::Q(d / "adult.parquet") + " --out " +
                              testing::Q(d / "out2.csv"));
  ASSERT_EQ(pq.exit_code, 0) << pq.err;
  EXPECT_NE(pq.out.find("suppressed: 906"), std::string::npos) << pq.out;
  EXPECT_EQ(testing::Slurp(d / "out2.csv"), from_csv);
  // Not Parquet at all: bad input, nothing written.
  testing::Spit(d / "fake.parquet", "not parquet");
  auto bad = testing::RunShell(std::string(CLEANROOM_BINARY) + " anonymize --config " +
                               testing::Q(d / "anon.yaml") + " --input " +
                               testing::Q(d / "fake.parquet") + " --out " +
                               testing::Q(d / "out3.csv"));
  EXPECT_EQ(bad.exit_code, 7) << bad.err;
  EXPECT_FALSE(PathExists(d / "out3.csv"));
}

}  // namespace
}  // namespace cr
