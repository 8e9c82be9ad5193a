// End to end: the built `cleanroom anonymize` on Adult, its files and exit codes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

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
