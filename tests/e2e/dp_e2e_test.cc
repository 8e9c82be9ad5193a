// Differential privacy through the binary: `query --epsilon`, require_dp,
// the JSON/table/csv shapes of noisy cells, and the attacks a hostile analyst
// tries: differencing two answers, averaging repeated answers, many small
// queries, concurrent overspend; every refusal leaves the room unchanged.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "e2e/e2e_fixture.h"

namespace cr::testing {
namespace {

using nlohmann::json;

// The campaign spec with a budget of `epsilon` (monthly) and, optionally,
// require_dp on the impressions.
std::string DpSpec(double epsilon, bool require_dp = false, const std::string& extra = "") {
  std::string text = SpecText();
  const std::string threshold = "  min_distinct_units: 50\n";
  text.insert(text.find(threshold) + threshold.size(),
              "  dp: {epsilon: " + std::to_string(epsilon) +
                  ", delta: 1.0e-6, max_groups_per_unit: 4, refresh: monthly" + extra + "}\n");
  if (require_dp) {
    const std::string receivers = "      receivers: [acme, newsco]\n";
    text.insert(text.find(receivers) + receivers.size(), "      require_dp: true\n");
  }
  return text;
}

const char* kByCampaign =
    "SELECT i.campaign, COUNT(DISTINCT p.email) AS buyers, SUM(p.amount) AS revenue "
    "FROM impressions i JOIN purchases p ON i.email = p.email GROUP BY i.campaign";
// About 400 of the 600 generated people per campaign: every group passes selection.
const char* kReach =
    "SELECT campaign, COUNT(DISTINCT email) AS people, SUM(cost) AS spend FROM impressions "
    "GROUP BY campaign";

class DpE2e : public E2eTest {
 protected:
  // A room over `spec_text` with both datasets ingested from `impressions`
  // and `purchases` (CSV paths), or generated ones when empty.
  void SetUpData(const std::string& spec_text, const std::string& impressions = "",
                 const std::string& purchases = "") {
    SetUpRoom(true, spec_text);
    if (impressions.empty()) Generate(3000, 600);
    std::string imp = impressions.empty() ? P("impressions.csv") : impressions;
    std::string pur = purchases.empty() ? P("purchases.csv") : purchases;
    auto a = Prepare("impressions", imp, "keys/newsco.key", "imp.crpkg");
    ASSERT_EQ(a.exit_code, 0) << a.err;
    auto b = Prepare("purchases", pur, "keys/acme.key", "pur.crpkg");
    ASSERT_EQ(b.exit_code, 0) << b.err;
    ASSERT_EQ(Ingest(P("imp.crpkg")).exit_code, 0);
    ASSERT_EQ(Ingest(P("pur.crpkg")).exit_code, 0);
  }
  RunResult Query(const std::string& sql, const std::string& flags = "") {
    return Run("--room " + Q(P("room")) + " --key " + Q(P("keys/acme.key")) +
               " --format json query --sql " + Q(sql) + (flags.empty() ? "" : " " + flags));
  }
  json QueryJson(const std::string& sql, const std::string& flags = "") {
    auto r = Query(sql, flags);
    EXPECT_EQ(r.exit_code, 0) << sql << "\n" << r.err;
    auto j = json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    return j;
  }
  // Every room file but the audit log: a refusal must leave them all as they were.
  std::map<std::string, std::string> RoomFiles() { return Snapshot(P("room"), "audit.log"); }
  std::vector<json> AuditEntries() {
    std::vector<json> out;
    std::istringstream in(Slurp(P("room/audit.log")));
    std::string line;
    while (std::getline(in, line)) {
      auto j = json::parse(line, nullptr, false);
      if (!j.is_discarded()) out.push_back(j);
    }
    return out;
  }
};

void ExpectNoisy(const json& cell) {
  ASSERT_TRUE(cell.is_object()) << cell.dump();
  EXPECT_EQ(cell.size(), 3u) << cell.dump();
  ASSERT_TRUE(cell["value"].is_number()) << cell.dump();
  EXPECT_LE(cell["ci_low"].get<double>(), cell["value"].get<double>());
  EXPECT_GE(cell["ci_high"].get<double>(), cell["value"].get<double>());
  EXPECT_LT(cell["ci_low"].get<double>(), cell["ci_high"].get<double>());
}

TEST_F(DpE2e, EpsilonGivesNoisyCellsWithIntervalsInEveryFormat) {
  SetUpData(DpSpec(10));
  json j = QueryJson(kReach, "--epsilon 3");
  EXPECT_EQ(j["epsilon_spent"], 3);
  EXPECT_TRUE(j["withheld_rows"].is_null());
  EXPECT_EQ(j["columns"], json({"campaign", "people", "spend"}));
  ASSERT_FALSE(j["rows"].empty());
  for (const auto& row : j["rows"]) {
    EXPECT_TRUE(row[0].is_string());
    ExpectNoisy(row[1]);
    ExpectNoisy(row[2]);
    EXPECT_TRUE(row[1]["value"].is_number_integer()) << row[1].dump();
  }
  // The same question again is the stored answer, in any format.
  auto table = Run("--room " + Q(P("room")) + " --key " + Q(P("keys/acme.key")) +
                   " query --epsilon 3 --sql " + Q(kReach));
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find(" ± "), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("differential privacy: epsilon 0 spent"), std::string::npos)
      << table.out;
  auto csv = Run("--room " + Q(P("room")) + " --key " + Q(P("keys/acme.key")) +
                 " --format csv query --epsilon 3 --sql " + Q(kReach));
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  EXPECT_EQ(csv.out.substr(0, csv.out.find('\n')),
            "campaign,people,people_ci_low,people_ci_high,spend,spend_ci_low,spend_ci_high");
}

// Averaging by repetition: asking the same question again returns the
// stored noisy answer (fresh noise would average out), at no cost.
TEST_F(DpE2e, RepeatingAQueryReturnsTheStoredAnswerFree) {
  SetUpData(DpSpec(2));
  json first = QueryJson(kReach, "--epsilon 2");
  EXPECT_EQ(first["epsilon_spent"], 2);
  ASSERT_FALSE(first["rows"].empty());
  for (int i = 0; i < 3; ++i) {
    json again = QueryJson(kReach, "--epsilon 2");
    EXPECT_EQ(again["rows"], first["rows"]);
    EXPECT_EQ(again["epsilon_spent"], 0);
    EXPECT_NE(again["result_id"], first["result_id"]);
  }
  // The whole budget is spent: any other question is refused.
  auto other = Query(kReach, "--epsilon 1");
  ExpectRefused(other, 4, "BUDGET_EXHAUSTED");
}

TEST_F(DpE2e, ManySmallQueriesExhaustTheBudgetAndTheRefusalChangesNothing) {
  SetUpData(DpSpec(1));
  const char* kCampaigns[] = {"spring", "summer", "autumn", "winter", "holiday"};
  int answered = 0;
  for (int i = 0; i < 4; ++i) {
    std::string sql = std::string("SELECT SUM(cost) AS spend FROM impressions WHERE campaign = '") +
                      kCampaigns[i] + "'";
    auto r = Query(sql, "--epsilon 0.25");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ++answered;
  }
  EXPECT_EQ(answered, 4);
  auto before = RoomFiles();
  auto r = Query("SELECT SUM(cost) AS spend FROM impressions WHERE campaign = 'holiday'",
                 "--epsilon 0.25");
  ExpectRefused(r, 4, "BUDGET_EXHAUSTED");
  EXPECT_EQ(RoomFiles(), before);
  // The refusal is audited with its cost, never a number from the data.
  auto entries = AuditEntries();
  ASSERT_FALSE(entries.empty());
  EXPECT_EQ(entries.back()["event"], "query.refused") << entries.back().dump();
}

TEST_F(DpE2e, EpsilonNeedsPrivacyDpAndStaysUnderTheCap) {
  SetUpData(SpecText());
  auto before = RoomFiles();
  auto r = Query(kByCampaign, "--epsilon 1");
  ExpectRefused(r, 3, "QUERY_REFUSED");
  EXPECT_NE(r.err.find("privacy.dp"), std::string::npos) << r.err;
  EXPECT_EQ(RoomFiles(), before);
  for (const char* bad : {"0", "-1", "abc", "inf", "nan", "1e400"}) {
    auto u = Query(kByCampaign, std::string("--epsilon ") + bad);
    ExpectRefused(u, 2, "USAGE");
  }
}

TEST_F(DpE2e, EpsilonAboveTheCapIsRefusedBeforeAnythingRuns) {
  SetUpData(DpSpec(5, false, ", max_query_epsilon: 2"));
  auto before = RoomFiles();
  auto r = Query(kByCampaign, "--epsilon 3");
  ExpectRefused(r, 3, "QUERY_REFUSED");
  EXPECT_NE(r.err.find("max_query_epsilon"), std::string::npos) << r.err;
  EXPECT_EQ(RoomFiles(), before);  // no charge, no result
  // DP-only refusals: nothing is charged either.
  auto median = Query("SELECT campaign, MEDIAN(cost) FROM impressions GROUP BY campaign",
                      "--epsilon 1");
  ExpectRefused(median, 3, "QUERY_REFUSED");
  EXPECT_EQ(RoomFiles(), before);
}

// require_dp: a query with no --epsilon is still answered with noise, at the
// spec's per-query default; the exact path is closed.
TEST_F(DpE2e, RequireDpAnswersWithTheDefaultEpsilon) {
  SetUpData(DpSpec(30, true));
  json j = QueryJson(kReach);
  EXPECT_EQ(j["epsilon_spent"], 3);  // a tenth of the budget
  ASSERT_FALSE(j["rows"].empty());
  for (const auto& row : j["rows"]) ExpectNoisy(row[2]);
  // The audit records the cost, never the exact figures.
  auto entries = AuditEntries();
  const json* run = nullptr;
  for (const auto& e : entries) {
    if (e["event"] == "query.run") run = &e;
  }
  ASSERT_NE(run, nullptr);
  const json& d = (*run)["details"];
  EXPECT_NEAR(d["epsilon_spent"].get<double>(), 3, 1e-9) << d.dump();
  EXPECT_TRUE(d["withheld_rows"].is_null()) << d.dump();
  EXPECT_FALSE(d.contains("min_distinct_units")) << d.dump();
}

// The differencing attack of issue 13: SUM of purchases over the people who
// saw spring or summer, then over those who saw spring: both cover hundreds
// of people, and their difference is exactly what the one summer-only
// viewer spent. Without DP the room releases both and the analyst reads 77
// off; with DP the difference is noise, repeating gives the same answers,
// and asking anew costs budget until none is left.
class DifferencingE2e : public DpE2e {
 protected:
  void WriteData() {
    std::string imp = "email,campaign,shown_at,cost\n", pur = "email,amount,day\n";
    for (int i = 0; i < 300; ++i) {
      std::string e = "p" + std::to_string(i) + "@example.com";
      imp += e + ",spring,2026-11-01 10:00:00,1.0\n";
      pur += e + ",10.00,2026-11-02\n";
    }
    imp += "target@example.com,summer,2026-11-01 10:00:00,1.0\n";
    pur += "target@example.com,77.00,2026-11-02\n";
    Spit(P("imp.csv"), imp);
    Spit(P("pur.csv"), pur);
  }
  double Sum(const json& j) {
    const json& c = j["rows"][0][0];
    return c.is_object() ? c["value"].get<double>() : c.get<double>();
  }
  const std::string both_ =
      "SELECT SUM(p.amount) AS s FROM impressions i JOIN purchases p ON i.email = p.email "
      "WHERE i.campaign IN ('spring', 'summer')";
  const std::string spring_ =
      "SELECT SUM(p.amount) AS s FROM impressions i JOIN purchases p ON i.email = p.email "
      "WHERE i.campaign = 'spring'";
};

TEST_F(DifferencingE2e, WithoutDpTheDifferenceIsExact) {
  // The control: the attack works on the exact-threshold room once its
  // difference checks are off (on by default they withhold the second
  // answer: tests/e2e/governance_e2e_test.cc).
  WriteData();
  std::string spec = SpecText();
  spec.insert(spec.find("  min_distinct_units: 50\n") + 25, "  difference_checks: false\n");
  SetUpData(spec, P("imp.csv"), P("pur.csv"));
  double d = Sum(QueryJson(both_)) - Sum(QueryJson(spring_));
  EXPECT_NEAR(d, 77, 1e-6);
}

TEST_F(DifferencingE2e, WithDpTheDifferenceIsNoiseAndRepeatingCostsBudget) {
  WriteData();
  SetUpData(DpSpec(2, true), P("imp.csv"), P("pur.csv"));
  json a = QueryJson(both_, "--epsilon 0.5");
  json b = QueryJson(spring_, "--epsilon 0.5");
  ASSERT_TRUE(a["rows"][0][0].is_object());
  double d = Sum(a) - Sum(b);
  EXPECT_GT(std::abs(d - 77), 1e-6) << "the exact value came out";
  // Repeating either returns the stored answer: nothing to average.
  EXPECT_EQ(QueryJson(both_, "--epsilon 0.5")["rows"], a["rows"]);
  EXPECT_EQ(QueryJson(spring_, "--epsilon 0.5")["rows"], b["rows"]);
  // Asking anew (another epsilon) costs budget until none is left.
  EXPECT_EQ(QueryJson(both_, "--epsilon 0.25")["epsilon_spent"], 0.25);
  EXPECT_EQ(QueryJson(spring_, "--epsilon 0.25")["epsilon_spent"], 0.25);
  EXPECT_EQ(QueryJson(both_, "--epsilon 0.5")["epsilon_spent"], 0);  // stored
  ExpectRefused(Query(spring_, "--epsilon 0.75"), 4, "BUDGET_EXHAUSTED");
  ExpectRefused(Query(both_, "--epsilon 0.6"), 4, "BUDGET_EXHAUSTED");
}

// Concurrent overspend: eight processes each ask for 1 of a budget of 3 at
// once. The ledger's lock lets exactly three through; the rest are refused
// with exit 4, and the total charged never passes the budget.
TEST_F(DpE2e, ConcurrentQueriesNeverOverspend) {
  SetUpData(DpSpec(3));
  std::string script;
  for (int i = 0; i < 8; ++i) {
    std::string sql = "SELECT SUM(cost) AS spend FROM impressions WHERE campaign = 'c" +
                      std::to_string(i) + "'";
    script += "(" + Q(Bin()) + " --room " + Q(P("room")) + " --key " + Q(P("keys/acme.key")) +
              " --format json query --epsilon 1 --sql " + Q(sql) + " > " +
              Q(P("out" + std::to_string(i))) + " 2>&1; echo $? > " +
              Q(P("rc" + std::to_string(i))) + ") & ";
  }
  script += "wait";
  RunShell(script);
  int ok = 0, exhausted = 0;
  for (int i = 0; i < 8; ++i) {
    std::string rc = Slurp(P("rc" + std::to_string(i)));
    std::string out = Slurp(P("out" + std::to_string(i)));
    if (rc == "0\n") {
      ++ok;
    } else {
      EXPECT_EQ(rc, "4\n") << out;
      EXPECT_NE(out.find("BUDGET_EXHAUSTED"), std::string::npos) << out;
      ++exhausted;
    }
  }
  EXPECT_EQ(ok, 3);
  EXPECT_EQ(exhausted, 5);
}

}  // namespace
}  // namespace cr::testing
