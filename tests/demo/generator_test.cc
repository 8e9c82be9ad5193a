#include "demo/generator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "testing/temp_dir.h"

namespace cr::demo {
namespace {

using cr::testing::Slurp;
using cr::testing::TempDir;

// RFC 4180 fields of one line; *ok is false when quoting is malformed.
std::vector<std::string> SplitCsv(const std::string& line, bool* ok) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  *ok = true;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
        if (i + 1 < line.size() && line[i + 1] != ',') *ok = false;
      } else {
        fields.back() += c;
      }
    } else if (c == '"') {
      if (!fields.back().empty()) *ok = false;
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  if (quoted) *ok = false;
  return fields;
}

struct Csv {
  std::string header;
  std::vector<std::vector<std::string>> rows;
};

Csv ReadCsv(const std::string& path, size_t expected_fields) {
  Csv csv;
  std::istringstream in(Slurp(path));
  std::getline(in, csv.header);
  size_t line_no = 1;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    bool ok = false;
    auto fields = SplitCsv(line, &ok);
    EXPECT_TRUE(ok) << "line " << line_no;
    EXPECT_EQ(fields.size(), expected_fields) << "line " << line_no;
    csv.rows.push_back(std::move(fields));
  }
  return csv;
}

// What `normalize: email` does: trim, lower-case.
std::string Normalize(std::string s) {
  auto b = s.find_first_not_of(' ');
  auto e = s.find_last_not_of(' ');
  s = b == std::string::npos ? "" : s.substr(b, e - b + 1);
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool IsDigits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// "I.FFF..." with exactly `decimals` digits after the point.
bool HasDecimals(const std::string& s, size_t decimals) {
  auto dot = s.find('.');
  return dot != std::string::npos && IsDigits(s.substr(0, dot)) && IsDigits(s.substr(dot + 1)) &&
         s.size() - dot - 1 == decimals;
}

bool IsDay(const std::string& s) {
  if (s.size() != 10 || s.compare(0, 5, "2026-") != 0 || s[7] != '-') return false;
  int month = std::atoi(s.substr(5, 2).c_str());
  int day = std::atoi(s.substr(8, 2).c_str());
  int len = month == 11 ? 30 : 31;
  return month >= 10 && month <= 12 && day >= 1 && day <= len;
}

bool IsTimestamp(const std::string& s) {
  if (s.size() != 19 || !IsDay(s.substr(0, 10)) || s[10] != ' ' || s[13] != ':' || s[16] != ':') {
    return false;
  }
  int h = std::atoi(s.substr(11, 2).c_str());
  int m = std::atoi(s.substr(14, 2).c_str());
  int sec = std::atoi(s.substr(17, 2).c_str());
  return h < 24 && m < 60 && sec < 60;
}

class GeneratorTest : public ::testing::Test {
 protected:
  GeneratorOptions Small() {
    GeneratorOptions o;
    o.people = 5000;
    o.impressions = 20000;
    o.purchases = 4000;
    return o;
  }
  TempDir dir_;
};

TEST_F(GeneratorTest, SameSeedSameBytesOtherSeedOtherBytes) {
  auto o = Small();
  ASSERT_TRUE(WriteImpressionsCsv(o, dir_ / "i1.csv"));
  ASSERT_TRUE(WriteImpressionsCsv(o, dir_ / "i2.csv"));
  ASSERT_TRUE(WritePurchasesCsv(o, dir_ / "p1.csv"));
  ASSERT_TRUE(WritePurchasesCsv(o, dir_ / "p2.csv"));
  EXPECT_EQ(Slurp(dir_ / "i1.csv"), Slurp(dir_ / "i2.csv"));
  EXPECT_EQ(Slurp(dir_ / "p1.csv"), Slurp(dir_ / "p2.csv"));
  o.seed = 43;
  ASSERT_TRUE(WriteImpressionsCsv(o, dir_ / "i3.csv"));
  ASSERT_TRUE(WritePurchasesCsv(o, dir_ / "p3.csv"));
  EXPECT_NE(Slurp(dir_ / "i1.csv"), Slurp(dir_ / "i3.csv"));
  EXPECT_NE(Slurp(dir_ / "p1.csv"), Slurp(dir_ / "p3.csv"));
}

// Person ids map to the same canonical emails in the file and in PersonEmail.
TEST_F(GeneratorTest, TinyAudienceIsExactlyTheFirstPeople) {
  GeneratorOptions o;
  o.people = 3;
  o.impressions = 3;
  o.purchases = 2;
  ASSERT_TRUE(WriteImpressionsCsv(o, dir_ / "i.csv"));
  auto csv = ReadCsv(dir_ / "i.csv", 5);
  ASSERT_EQ(csv.rows.size(), 3u);
  std::set<std::string> emails;
  for (auto& r : csv.rows) emails.insert(Normalize(r[0]));
  EXPECT_EQ(emails, (std::set<std::string>{PersonEmail(0), PersonEmail(1), PersonEmail(2)}));
}

TEST_F(GeneratorTest, HeadersAndRowCounts) {
  auto o = Small();
  ASSERT_TRUE(WriteImpressionsCsv(o, dir_ / "i.csv"));
  ASSERT_TRUE(WritePurchasesCsv(o, dir_ / "p.csv"));
  auto imp = ReadCsv(dir_ / "i.csv", 5);
  auto pur = ReadCsv(dir_ / "p.csv", 4);
  EXPECT_EQ(imp.header, "email,campaign,shown_at,cost,device");
  EXPECT_EQ(pur.header, "email,amount,day,store_id");
  EXPECT_EQ(imp.rows.size(), 20000u);
  EXPECT_EQ(pur.rows.size(), 4000u);

  o.impressions = 0;
  o.purchases = 0;
  ASSERT_TRUE(WriteImpressionsCsv(o, dir_ / "i0.csv"));
  ASSERT_TRUE(WritePurchasesCsv(o, dir_ / "p0.csv"));
  EXPECT_EQ(Slurp(dir_ / "i0.csv"), "email,campaign,shown_at,cost,device\n");
  EXPECT_EQ(Slurp(dir_ / "p0.csv"), "email,amount,day,store_id\n");
}

TEST_F(GeneratorTest, OverlapMatchesConfiguredShare) {
  for (double share : {0.0, 0.3, 0.75, 1.0}) {
    auto o = Small();
    o.buyer_overlap = share;
    ASSERT_TRUE(WriteImpressionsCsv(o, dir_ / "i.csv"));
    ASSERT_TRUE(WritePurchasesCsv(o, dir_ / "p.csv"));
    std::set<std::string> audience, customers;
    for (auto& r : ReadCsv(dir_ / "i.csv", 5).rows) audience.insert(Normalize(r[0]));
    for (auto& r : ReadCsv(dir_ / "p.csv", 4).rows) customers.insert(Normalize(r[0]));
    EXPECT_EQ(audience.size(), 5000u);   // everyone in the audience is shown an ad
    EXPECT_EQ(customers.size(), 2000u);  // a pool of purchases / 2 customers
    size_t both = 0;
    for (auto& c : customers) both += audience.count(c);
    double got = static_cast<double>(both) / static_cast<double>(customers.size());
    EXPECT_NEAR(got, share, 0.02) << "share " << share;
  }
}

TEST_F(GeneratorTest, ImpressionValuesInRange) {
  auto o = Small();
  o.campaigns = 3;
  ASSERT_TRUE(WriteImpressionsCsv(o, dir_ / "i.csv"));
  const std::set<std::string> campaigns = {"spring", "summer", "autumn"};
  const std::set<std::string> devices = {"mobile", "desktop", "tablet", "ctv"};
  std::set<std::string> seen_campaigns;
  std::map<std::string, int> per_person;
  for (auto& r : ReadCsv(dir_ / "i.csv", 5).rows) {
    ASSERT_EQ(r.size(), 5u);
    EXPECT_TRUE(campaigns.count(r[1])) << r[1];
    seen_campaigns.insert(r[1]);
    EXPECT_TRUE(IsTimestamp(r[2])) << r[2];
    EXPECT_TRUE(HasDecimals(r[3], 4)) << r[3];
    double cost = std::strtod(r[3].c_str(), nullptr);
    EXPECT_GE(cost, 0.0);
    EXPECT_LT(cost, 5.0);
    EXPECT_TRUE(devices.count(r[4])) << r[4];
    ++per_person[Normalize(r[0])];
  }
  EXPECT_EQ(seen_campaigns, campaigns);
  // Skewed exposure: the heaviest viewer sees far more ads than the mean (4),
  // and at least half the audience sees no more than the mean.
  std::vector<int> counts;
  for (auto& [email, n] : per_person) counts.push_back(n);
  std::sort(counts.begin(), counts.end());
  EXPECT_GT(counts.back(), 40);
  EXPECT_LE(counts[counts.size() / 2], 4);
}

TEST_F(GeneratorTest, PurchaseValuesInRange) {
  auto o = Small();
  ASSERT_TRUE(WritePurchasesCsv(o, dir_ / "p.csv"));
  for (auto& r : ReadCsv(dir_ / "p.csv", 4).rows) {
    ASSERT_EQ(r.size(), 4u);
    EXPECT_TRUE(HasDecimals(r[1], 2)) << r[1];
    double amount = std::strtod(r[1].c_str(), nullptr);
    EXPECT_GE(amount, 1.0);
    EXPECT_LT(amount, 500.0);
    EXPECT_TRUE(IsDay(r[2])) << r[2];
    EXPECT_TRUE(IsDigits(r[3])) << r[3];
  }
}

TEST_F(GeneratorTest, SomeRawEmailsAreMessyAndNormaliseToCanonical) {
  auto o = Small();
  ASSERT_TRUE(WriteImpressionsCsv(o, dir_ / "i.csv"));
  auto rows = ReadCsv(dir_ / "i.csv", 5).rows;
  size_t messy = 0, spaced = 0;
  for (auto& r : rows) {
    const std::string norm = Normalize(r[0]);
    if (norm != r[0]) ++messy;
    if (r[0].front() == ' ') ++spaced;
    // Canonical form: name.name<digits>@example.com
    auto at = norm.find('@');
    ASSERT_NE(at, std::string::npos);
    EXPECT_EQ(norm.substr(at), "@example.com");
    EXPECT_NE(norm.find('.'), std::string::npos);
  }
  double share = static_cast<double>(messy) / static_cast<double>(rows.size());
  EXPECT_GT(share, 0.07);
  EXPECT_LT(share, 0.13);
  EXPECT_GT(spaced, 0u);
  // Spaced variants are quoted in the file so CSV readers keep the spaces.
  EXPECT_NE(Slurp(dir_ / "i.csv").find("\"  "), std::string::npos);
}

TEST_F(GeneratorTest, PersonEmailIsCanonicalAndDistinct) {
  std::set<std::string> seen;
  for (int64_t p = 0; p < 20000; ++p) {
    std::string e = PersonEmail(p);
    EXPECT_EQ(e, Normalize(e));
    EXPECT_TRUE(seen.insert(e).second) << "duplicate for person " << p;
  }
  EXPECT_TRUE(PersonEmail(123).find("123@example.com") != std::string::npos);
}

TEST_F(GeneratorTest, BadOptionsAreUsageErrorsAndWriteNothing) {
  auto bad = [&](auto mutate) {
    auto o = Small();
    mutate(o);
    auto st = WriteImpressionsCsv(o, dir_ / "x.csv");
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, ErrorCode::USAGE);
    EXPECT_FALSE(std::filesystem::exists(dir_ / "x.csv"));
  };
  bad([](GeneratorOptions& o) { o.people = 0; });
  bad([](GeneratorOptions& o) { o.impressions = -1; });
  bad([](GeneratorOptions& o) { o.buyer_overlap = 1.5; });
  bad([](GeneratorOptions& o) { o.campaigns = 0; });
  bad([](GeneratorOptions& o) { o.campaigns = 9; });
}

TEST_F(GeneratorTest, WritesAtomicallyAndLeavesNoTemporaries) {
  auto o = Small();
  ASSERT_TRUE(WritePurchasesCsv(o, dir_ / "p.csv"));
  const std::string first = Slurp(dir_ / "p.csv");
  o.seed = 7;
  ASSERT_TRUE(WritePurchasesCsv(o, dir_ / "p.csv"));  // replaces
  EXPECT_NE(Slurp(dir_ / "p.csv"), first);
  size_t files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir_.path())) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1u);
  EXPECT_FALSE(WritePurchasesCsv(o, dir_ / "missing/p.csv"));
}

}  // namespace
}  // namespace cr::demo
