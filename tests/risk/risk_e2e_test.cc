// End to end: the built `cleanroom risk` on Adult and on a small attack, its
// files and exit codes.
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>
#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "testing/temp_dir.h"

namespace cr {
namespace {

using testing::Q;
using testing::RunShell;
using testing::Slurp;
using testing::Spit;
using testing::TempDir;

std::string Bin() { return CLEANROOM_BINARY; }
std::string Adult() { return std::string(CLEANROOM_DATA_DIR) + "/adult/adult.csv"; }
const char* kQis =
    "sex,age,race,marital-status,education,native-country,workclass,occupation,salary-class";

TEST(RiskE2eTest, AdultJsonOnStdoutAndReportFile) {
  TempDir d;
  auto r = RunShell(Bin() + " --format json risk --input " + Q(Adult()) + " --qi " + Q(kQis) +
                    " --population 300000 --report " + Q(d / "risk.json") + " --html " +
                    Q(d / "risk.html"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["records"], 30162);
  EXPECT_EQ(j["sample_uniques"], 15512);
  EXPECT_NEAR(j["sample_uniqueness"].get<double>(), 0.5143, 0.00005);
  EXPECT_EQ(j["prosecutor"]["max"], 1.0);
  EXPECT_TRUE(j.contains("journalist"));
  EXPECT_TRUE(j.contains("marketer"));
  EXPECT_TRUE(j["population"]["pitman"]["uniques"].is_number());
  EXPECT_TRUE(j["population"]["zayatz"]["uniques"].is_number());
  EXPECT_EQ(nlohmann::json::parse(Slurp(d / "risk.json")), j);
  std::string html = Slurp(d / "risk.html");
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));  // no external fetches
}

// --records: which records are at risk, one line each, consistent with the report.
TEST(RiskE2eTest, PerRecordRiskMatchesTheReport) {
  TempDir d;
  auto r = RunShell(Bin() + " --format json risk --input " + Q(Adult()) + " --qi " + Q(kQis) +
                    " --records " + Q(d / "records.csv"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_FALSE(j.contains("record_class_size"));  // not in the JSON report
  EXPECT_EQ(std::filesystem::status(d / "records.csv").permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  std::istringstream in(Slurp(d / "records.csv"));
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "record,class_size,prosecutor_risk,at_risk");
  uint64_t rows = 0, at_risk = 0, uniques = 0, expected_record = 1;
  while (std::getline(in, line)) {
    ++rows;
    std::istringstream f(line);
    std::string record, size, risk, flag;
    std::getline(f, record, ',');
    std::getline(f, size, ',');
    std::getline(f, risk, ',');
    std::getline(f, flag, ',');
    EXPECT_EQ(std::stoull(record), expected_record++);
    EXPECT_NEAR(std::stod(risk), 1.0 / std::stod(size), 1e-6);
    EXPECT_EQ(flag == "true", std::stod(risk) > 0.2) << line;
    at_risk += flag == "true";
    uniques += size == "1";
  }
  EXPECT_EQ(rows, 30162u);
  EXPECT_EQ(at_risk, j["records_at_risk"].get<uint64_t>());
  EXPECT_EQ(uniques, 15512u);
}

// A Parquet release (what `anonymize --out NAME.parquet` writes) is attacked
// like its CSV: the same Adult figures from a Parquet copy.
TEST(RiskE2eTest, ParquetInputGivesTheSameFigures) {
  TempDir d;
  auto db = engine::Database::Open();
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->Execute("COPY (SELECT * FROM read_csv(" + engine::QuoteLiteral(Adult()) +
                          ", delim = ';', header = true, all_varchar = true)) TO " +
                          engine::QuoteLiteral(d / "adult.parquet") + " (FORMAT parquet)"));
  auto r = RunShell(Bin() + " --format json risk --input " + Q(d / "adult.parquet") + " --qi " +
                    Q(kQis));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["records"], 30162);
  EXPECT_EQ(j["sample_uniques"], 15512);
  Spit(d / "fake.parquet", "not parquet");
  r = RunShell(Bin() + " risk --input " + Q(d / "fake.parquet") + " --qi age");
  EXPECT_EQ(r.exit_code, 7) << r.err;
}

TEST(RiskE2eTest, LinkageAttackThroughTheBinary) {
  TempDir d;
  Spit(d / "release.csv",
       "id;age;zip;disease\nr1;30-39;021**;flu\nr2;30-39;021**;cold\nr3;[50, 60[;022**;cancer\n");
  Spit(d / "aux.csv", "id,age,zip\nr3,53,02201\nr1,33,02139\n");
  auto r = RunShell(Bin() + " --format json risk --input " + Q(d / "release.csv") +
                    " --qi age,zip --sensitive disease --aux " + Q(d / "aux.csv") +
                    " --link age,zip --truth id");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["linkage"]["reidentified"], 1);
  EXPECT_EQ(j["linkage"]["correct"], 1);
  EXPECT_EQ(j["linkage"]["disclosed"], 1);
  EXPECT_EQ(j["sensitive"]["distinct_l"], 1);
  // Human summary without --format json.
  r = RunShell(Bin() + " risk --input " + Q(d / "release.csv") + " --qi age,zip");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("unique"), std::string::npos);
}

TEST(RiskE2eTest, ExitCodes) {
  TempDir d;
  Spit(d / "release.csv", "age,zip\n30,02139\n");
  auto r = RunShell(Bin() + " risk --input " + Q(d / "release.csv") + " --qi age,nope");
  EXPECT_EQ(r.exit_code, 7);
  EXPECT_NE(r.err.find("error[UNKNOWN_COLUMN]"), std::string::npos) << r.err;
  r = RunShell(Bin() + " risk --input " + Q(d / "missing.csv") + " --qi age");
  EXPECT_EQ(r.exit_code, 7);
  Spit(d / "ragged.csv", "age,zip\n30\n");
  r = RunShell(Bin() + " risk --input " + Q(d / "ragged.csv") + " --qi age");
  EXPECT_EQ(r.exit_code, 7);
  EXPECT_NE(r.err.find("error[BAD_INPUT]"), std::string::npos) << r.err;
  r = RunShell(Bin() + " risk --input " + Q(d / "release.csv") + " --qi age --aux " +
               Q(d / "release.csv"));
  EXPECT_EQ(r.exit_code, 2);
  // Fail closed: an error writes neither report.
  r = RunShell(Bin() + " risk --input " + Q(d / "release.csv") + " --qi age,nope --report " +
               Q(d / "r.json") + " --html " + Q(d / "r.html"));
  EXPECT_EQ(r.exit_code, 7);
  EXPECT_FALSE(std::filesystem::exists(d / "r.json"));
  EXPECT_FALSE(std::filesystem::exists(d / "r.html"));
  r = RunShell(Bin() + " risk --input " + Q(d / "release.csv") + " --qi age --population 0");
  EXPECT_EQ(r.exit_code, 7);
  EXPECT_NE(r.err.find("error[BAD_INPUT]"), std::string::npos) << r.err;
}

// The library's errors name parameters; the command adds the flag that set them.
TEST(RiskE2eTest, ErrorsNameTheFlag) {
  TempDir d;
  Spit(d / "release.csv", "age,zip\n30,02139\n");
  auto r = RunShell(Bin() + " risk --input " + Q(d / "release.csv") + " --qi age,nope");
  EXPECT_EQ(r.exit_code, 7);
  EXPECT_NE(r.err.find("cleanroom: error[UNKNOWN_COLUMN]: --qi: quasi-identifiers: no column nope"),
            std::string::npos)
      << r.err;
  r = RunShell(Bin() + " risk --input " + Q(d / "release.csv") + " --qi age --threshold 2");
  EXPECT_EQ(r.exit_code, 7);
  EXPECT_NE(r.err.find("error[BAD_INPUT]: --threshold: risk: the threshold must be in [0, 1]"),
            std::string::npos)
      << r.err;
  r = RunShell(Bin() + " risk --input " + Q(d / "release.csv") + " --qi age --sensitive nope");
  EXPECT_EQ(r.exit_code, 7);
  EXPECT_NE(r.err.find("--sensitive: sensitive attribute: no column nope"), std::string::npos)
      << r.err;
  r = RunShell(Bin() + " risk --input " + Q(d / "release.csv") + " --qi age --aux " +
               Q(d / "release.csv") + " --link age,nope");
  EXPECT_EQ(r.exit_code, 7);
  EXPECT_NE(r.err.find("--link: link columns (release): no column nope"), std::string::npos)
      << r.err;
  r = RunShell(Bin() + " risk --input " + Q(d / "release.csv") + " --qi age --link age");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("error[USAGE]: --aux and --link go together"), std::string::npos) << r.err;
  r = RunShell(Bin() + " risk --input " + Q(d / "release.csv") + " --qi age --truth id");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("error[USAGE]: --truth needs --aux and --link"), std::string::npos)
      << r.err;
}

// The example: the naive release leaks, the anonymised one does not.
TEST(RiskE2eTest, HospitalPharmacyExampleShowsTheDrop) {
  if (RunShell("command -v python3").exit_code != 0) GTEST_SKIP() << "python3 is not installed";
  TempDir d;
  auto r = RunShell("CLEANROOM=" + Q(Bin()) + " OUT=" + Q(d.path()) + " sh " +
                    Q(std::string(CLEANROOM_SOURCE_DIR) + "/examples/hospital-pharmacy/run.sh"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto naive = nlohmann::json::parse(Slurp(d / "naive.json"));
  auto released = nlohmann::json::parse(Slurp(d / "released.json"));
  EXPECT_GT(naive["linkage"]["reidentified"].get<int>(), 1000);
  EXPECT_GT(naive["linkage"]["correct"].get<int>(), 1000);
  EXPECT_EQ(released["linkage"]["reidentified"], 0);
  EXPECT_EQ(released["linkage"]["disclosed"], 0);
  EXPECT_GE(released["k"].get<int>(), 5);
}

// The HTML page renders in a real browser, offline, with both charts.
TEST(RiskE2eTest, HtmlRendersInHeadlessChromium) {
  const std::string chromium = "/usr/bin/chromium";
  if (!std::filesystem::exists(chromium)) GTEST_SKIP() << "chromium is not installed";
  TempDir d;
  Spit(d / "release.csv",
       "id,age,zip,disease\nr1,30-39,021**,flu\nr2,30-39,021**,cold\n"
       "r3,50-59,022**,cancer\n");
  Spit(d / "aux.csv", "id,age,zip\nr3,53,02201\n");
  auto r = RunShell(Bin() + " risk --input " + Q(d / "release.csv") +
                    " --qi age,zip --sensitive disease --aux " + Q(d / "aux.csv") +
                    " --link age,zip --truth id --html " + Q(d / "risk.html"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::filesystem::create_directory(d / "profile");
  const std::string flags =
      " --headless --no-sandbox --disable-gpu --disable-background-networking "
      "--disable-component-update --disable-sync --no-first-run --user-data-dir=" +
      Q(d / "profile") + " --window-size=1000,1600 ";
  auto dom =
      RunShell("timeout 60 " + chromium + flags + "--dump-dom " + Q("file://" + (d / "risk.html")));
  ASSERT_EQ(dom.exit_code, 0) << dom.err;
  size_t svgs = 0;
  for (size_t p = dom.out.find("<svg"); p != std::string::npos; p = dom.out.find("<svg", p + 1)) {
    ++svgs;
  }
  EXPECT_EQ(svgs, 3u);  // class sizes, risk distribution, candidate sets
  EXPECT_NE(dom.out.find("Linkage attack"), std::string::npos);
  EXPECT_NE(dom.out.find("singled out 1"), std::string::npos);
  auto shot = RunShell("timeout 60 " + chromium + flags + "--screenshot=" + Q(d / "shot.png") +
                       " " + Q("file://" + (d / "risk.html")));
  ASSERT_EQ(shot.exit_code, 0) << shot.err;
  EXPECT_GT(std::filesystem::file_size(d / "shot.png"), 10000u);
}

}  // namespace
}  // namespace cr
