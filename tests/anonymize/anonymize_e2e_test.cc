// End to end: the built `cleanroom anonymize` on Adult, its files and exit codes.
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "anonymize/table.h"
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

std::string AdultDir() { return std::string(CLEANROOM_DATA_DIR) + "/adult"; }

std::string Config(const std::string& privacy) {
  std::string y = "separator: \";\"\nquasi_identifiers:\n";
  for (const char* c : {"sex", "age", "race", "marital-status", "education", "native-country",
                        "workclass", "occupation", "salary-class"}) {
    y +=
        std::string("  ") + c + ": {hierarchy: " + AdultDir() + "/adult_hierarchy_" + c + ".csv}\n";
  }
  return y + privacy;
}

// anonymize with d/anon.yaml from `input` to `out`.
std::string AnonymizeTo(const TempDir& d, const std::string& input, const std::string& out) {
  return std::string(CLEANROOM_BINARY) + " anonymize --config " + Q(d / "anon.yaml") +
         " --input " + Q(input) + " --out " + Q(out);
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
  // What to relax: no transformation can meet k above the number of records.
  EXPECT_NE(r.err.find("k=100000 is more than the 30162 records"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("lower k to at most 30162"), std::string::npos) << r.err;
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
  auto pq = testing::RunShell(AnonymizeTo(d, d / "adult.parquet", d / "out2.csv"));
  ASSERT_EQ(pq.exit_code, 0) << pq.err;
  EXPECT_NE(pq.out.find("suppressed: 906"), std::string::npos) << pq.out;
  EXPECT_EQ(testing::Slurp(d / "out2.csv"), from_csv);
  // Not Parquet at all: bad input, nothing written.
  testing::Spit(d / "fake.parquet", "not parquet");
  auto bad = testing::RunShell(AnonymizeTo(d, d / "fake.parquet", d / "out3.csv"));
  EXPECT_EQ(bad.exit_code, 7) << bad.err;
  EXPECT_FALSE(PathExists(d / "out3.csv"));
}

// --out NAME.parquet writes the same release as Parquet (every column as
// text, values exactly as released), re-checked from the written file.
TEST(AnonymizeE2eTest, ParquetOutputHoldsTheSameRelease) {
  testing::TempDir d;
  testing::Spit(d / "anon.yaml", Config("privacy: {k: 5, suppression_limit: 0.04}\n"));
  auto csv = testing::RunShell(Cmd(d, "anon.yaml"));
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  auto pq = testing::RunShell(AnonymizeTo(d, AdultDir() + "/adult.csv", d / "out.parquet"));
  ASSERT_EQ(pq.exit_code, 0) << pq.err;
  EXPECT_NE(pq.out.find("suppressed: 906"), std::string::npos) << pq.out;
  EXPECT_EQ(std::filesystem::status(d / "out.parquet").permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  // The same names and values, cell by cell, as the CSV release (read by our
  // own CSV reader, not DuckDB's), all as text.
  auto from_csv = anonymize::ReadTableFile(d / "out.csv");
  auto from_pq = anonymize::ReadTableFile(d / "out.parquet");
  ASSERT_TRUE(from_csv && from_pq);
  EXPECT_EQ(from_pq->num_rows(), 30162u);  // suppressed records stay, masked
  EXPECT_TRUE(anonymize::SameCells(*from_pq, *from_csv));
  auto db = engine::Database::Open();
  ASSERT_TRUE(db);
  auto types = db->Query("SELECT DISTINCT column_type FROM (DESCRIBE SELECT * FROM read_parquet(" +
                         engine::QuoteLiteral(d / "out.parquet") + "))");
  ASSERT_TRUE(types);
  ASSERT_EQ(types->row_count(), 1u);
  EXPECT_EQ(*types->at(0, 0), "VARCHAR");
  // Everything written and re-checked, then the move into place fails (the
  // destination is a folder): exit 1, and no staging file is left behind.
  std::filesystem::create_directories(d / "taken.parquet/inside");
  auto taken = testing::RunShell(AnonymizeTo(d, AdultDir() + "/adult.csv", d / "taken.parquet"));
  EXPECT_EQ(taken.exit_code, 1) << taken.err;
  for (auto& e : std::filesystem::directory_iterator(d.path())) {
    EXPECT_EQ(e.path().filename().string().find("cr-staging"), std::string::npos) << e.path();
  }
}

}  // namespace
}  // namespace cr

namespace cr {
namespace {

// Issue 9 through the binary: a config naming only `zip` must not release the
// name, ssn and phone next to it.
class AnonymizeTreatmentE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string csv = "name,ssn,phone,zip\n";
    for (int i = 0; i < 20; ++i) {
      csv += "person" + std::to_string(i) + ",1234567" + std::to_string(10 + i) + ",555-01" +
             std::to_string(10 + i) + ",0213" + std::to_string(i % 2) + "\n";
    }
    Spit(d_ / "in.csv", csv);
  }

  testing::RunResult Run(const std::string& yaml) {
    Spit(d_ / "anon.yaml", yaml);
    return RunShell(std::string(CLEANROOM_BINARY) + " anonymize --config " + Q(d_ / "anon.yaml") +
                    " --input " + Q(d_ / "in.csv") + " --out " + Q(d_ / "out.csv") +
                    " --report " + Q(d_ / "report.json"));
  }

  // Refused with exit 7 and BAD_INPUT, and nothing written: no output, no
  // report, no staging file, the inputs untouched.
  void ExpectRefused(const testing::RunResult& r, std::initializer_list<std::string> parts) {
    EXPECT_EQ(r.exit_code, 7) << r.err;
    EXPECT_NE(r.err.find("cleanroom: error[BAD_INPUT]: "), std::string::npos) << r.err;
    for (const auto& p : parts) EXPECT_NE(r.err.find(p), std::string::npos) << r.err;
    auto files = testing::Snapshot(d_.path());
    EXPECT_EQ(files.size(), 2u);
    EXPECT_TRUE(files.count("in.csv") && files.count("anon.yaml")) << files.size();
  }

  TempDir d_;
};

TEST_F(AnonymizeTreatmentE2eTest, UndeclaredColumnsAreRefusedByName) {
  auto r = Run("quasi_identifiers: {zip: {generalize: prefix}}\nprivacy: {k: 2}\n");
  ExpectRefused(r, {"3 input column(s) have no treatment in the config: name, ssn, phone",
                    "others: remove"});
}

TEST_F(AnonymizeTreatmentE2eTest, OthersRemoveReleasesOnlyTheDeclaredColumns) {
  auto r = Run("quasi_identifiers: {zip: {generalize: prefix}}\nprivacy: {k: 2}\nothers: remove\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("removed (no treatment, others: remove): name, ssn, phone"),
            std::string::npos)
      << r.out;
  auto out = anonymize::ReadTableFile(d_ / "out.csv");
  ASSERT_TRUE(out);
  ASSERT_EQ(out->num_columns(), 1u);
  EXPECT_EQ(out->column(0).name, "zip");
  EXPECT_EQ(out->num_rows(), 20u);
  std::string written = Slurp(d_ / "out.csv");
  for (const char* leak : {"person", "1234567", "555-01"}) {
    EXPECT_EQ(written.find(leak), std::string::npos) << leak;
  }
  auto rep = nlohmann::json::parse(Slurp(d_ / "report.json"));
  EXPECT_EQ(rep["removed"], nlohmann::json({"name", "ssn", "phone"}));
}

TEST_F(AnonymizeTreatmentE2eTest, ADeclaredColumnMissingFromTheInputIsRefused) {
  auto r = Run(
      "quasi_identifiers: {zip: {generalize: prefix}}\nidentifiers: {email: {transform: drop}}\n"
      "others: remove\n");
  ExpectRefused(r, {"the config names 1 column(s) the input does not have: email"});
}

// Issue 10: anon.yaml goes through the strict reader.
TEST_F(AnonymizeTreatmentE2eTest, ADuplicateKeyIsRefusedWithPathAndLine) {
  auto r = Run("quasi_identifiers: {zip: {generalize: prefix}}\nprivacy:\n  k: 2\n  k: 10\n"
               "others: remove\n");
  ExpectRefused(r, {"anon.yaml: privacy.k: duplicate key (line 4)"});
}

TEST_F(AnonymizeTreatmentE2eTest, AQuotedNumberIsRefused) {
  auto r = Run("quasi_identifiers: {zip: {generalize: prefix}}\nprivacy: {k: \"2\"}\n"
               "others: remove\n");
  ExpectRefused(r, {"privacy.k: expected an integer, found a quoted string (line 2)"});
}

TEST_F(AnonymizeTreatmentE2eTest, AnUnknownKeyIsRefused) {
  auto r = Run("quasi_identifiers: {zip: {generalize: prefix}}\nprivacy: {k: 2}\n"
               "other: remove\n");
  ExpectRefused(r, {"other: unknown key (expected one of:", "(line 3)"});
}

TEST_F(AnonymizeTreatmentE2eTest, AHierarchyMissingValuesNamesThem) {
  Spit(d_ / "zip.csv", "02130;0213*;*\n");
  auto r = Run("quasi_identifiers: {zip: {hierarchy: zip.csv}}\nothers: remove\n");
  EXPECT_EQ(r.exit_code, 7) << r.err;
  EXPECT_NE(r.err.find("error[BAD_INPUT]: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("column zip: 1 distinct value(s) are not in hierarchy file " +
                       (d_ / "zip.csv") + ": '02131'"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(PathExists(d_ / "out.csv"));
  EXPECT_FALSE(PathExists(d_ / "report.json"));
}

TEST_F(AnonymizeTreatmentE2eTest, ThresholdNotMetSaysWhatToRelax) {
  auto r = Run("quasi_identifiers: {zip: {generalize: prefix}}\nprivacy: {k: 25}\n"
               "others: remove\n");
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("error[THRESHOLD_NOT_MET]: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("k=25 is more than the 20 records"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("lower k to at most 20"), std::string::npos) << r.err;
  EXPECT_FALSE(PathExists(d_ / "out.csv"));
  EXPECT_FALSE(PathExists(d_ / "report.json"));
}

}  // namespace
}  // namespace cr
