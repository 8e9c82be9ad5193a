// Pooled datasets through the binary (issue 14): five banks contribute their
// own parts of one dataset, a consultant queries it. The cell rules
// (min_contributors, dominance, the p% rule) are checked against values the
// test computes itself from the rows it wrote; the attacks are a contributor
// column named in every clause, a party that is not a contributor trying to
// contribute, and the differencing pair over a pooled dataset.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "demo/serve_process.h"
#include "e2e/e2e_fixture.h"

namespace cr::testing {
namespace {

using nlohmann::json;

const std::vector<std::string> kBanks = {"bank-a", "bank-b", "bank-c", "bank-d", "bank-e"};

// One bank's spend in one category: `lines` budget lines sharing `total`.
struct Spend {
  std::string bank, category;
  int lines = 0;
  double total = 0;
};

// The cells and what each is built to show (totals per bank, in euros):
//   cloud     all five banks, no one dominant: released under every rule;
//   mainframe two banks with many lines: fewer contributors than required;
//   network   bank-a supplies 70%: fails dominance {n: 1, k: 0.6} only;
//   security  two banks 50% and 45%: the rest (5) is below 10% of the
//             largest, so bank-b could estimate bank-a closely: fails p% only.
const std::vector<Spend> kSpend = {
    {"bank-a", "cloud", 10, 4100},     {"bank-b", "cloud", 10, 3200},
    {"bank-c", "cloud", 10, 2500},     {"bank-d", "cloud", 10, 4000},
    {"bank-e", "cloud", 10, 1800},     {"bank-a", "mainframe", 60, 9000},
    {"bank-b", "mainframe", 60, 8000}, {"bank-a", "network", 10, 700},
    {"bank-b", "network", 10, 100},    {"bank-c", "network", 10, 100},
    {"bank-d", "network", 10, 100},    {"bank-a", "security", 10, 500},
    {"bank-b", "security", 10, 450},   {"bank-c", "security", 10, 20},
    {"bank-d", "security", 10, 20},    {"bank-e", "security", 10, 5},
};

std::string Rules(bool dominance, bool p_percent) {
  std::string r = "      min_contributors: 3\n";
  if (dominance) r += "      dominance: {n: 1, k: 0.6}\n";
  if (p_percent) r += "      p_percent: 10\n";
  return r;
}

std::string PoolSpec(const std::string& rules, const std::string& privacy_extra = "",
                     const std::string& rule_extra = "") {
  std::string s = "collaboration: peer-bench-test\nparties:\n";
  for (const auto& b : kBanks) {
    s +=
        "  " + b + ": {public_key: keys/" + b + ".pub, abilities: [contribute, receive_results]}\n";
  }
  s += "  outsider: {public_key: keys/outsider.pub, abilities: [contribute]}\n"
       "  consultant: {public_key: keys/consultant.pub, abilities: [query, receive_results]}\n"
       "privacy:\n  unit: budget_line\n  min_distinct_units: 5\n" +
       privacy_extra +
       "datasets:\n  spend:\n    contributors: [bank-a, bank-b, bank-c, bank-d, bank-e]\n"
       "    privacy_unit_column: line_id\n    columns:\n"
       "      line_id: {type: string, role: join_key}\n"
       "      category: {type: string, role: dimension}\n"
       "      amount: {type: double, role: metric, bounds: [0, 100000]}\n"
       "    rule:\n      kind: aggregation\n"
       "      aggregates: {amount: [sum, avg], line_id: [count_distinct]}\n" +
       rules + rule_extra +
       "      receivers: [bank-a, bank-b, bank-c, bank-d, bank-e, consultant]\n";
  return s;
}

// Per category, each bank's total: what the room must compare, computed here.
std::map<std::string, std::map<std::string, double>> ByCell(const std::vector<Spend>& spend) {
  std::map<std::string, std::map<std::string, double>> out;
  for (const auto& s : spend) out[s.category][s.bank] += s.total;
  return out;
}

std::vector<double> Sorted(const std::map<std::string, double>& parts) {
  std::vector<double> v;
  for (const auto& [bank, x] : parts) v.push_back(x);
  std::sort(v.rbegin(), v.rend());
  return v;
}

bool PassesDominance(const std::map<std::string, double>& parts, int n, double k) {
  auto v = Sorted(parts);
  double total = 0, top = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    total += v[i];
    if (i < static_cast<size_t>(n)) top += v[i];
  }
  return top <= k * total;
}

bool PassesPPercent(const std::map<std::string, double>& parts, double p) {
  auto v = Sorted(parts);
  double rest = 0;
  for (size_t i = 2; i < v.size(); ++i) rest += v[i];
  return rest > p / 100 * v[0];
}

// Linear interpolation between order statistics, as quantile_cont.
double Quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  double pos = q * static_cast<double>(v.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(pos)), hi = static_cast<size_t>(std::ceil(pos));
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

class PoolE2e : public E2eTest {
 protected:
  // Keys for every party, the spec, a room activated with every signature.
  void SetUpPool(const std::string& spec_text) {
    std::vector<std::string> parties = kBanks;
    parties.push_back("outsider");
    parties.push_back("consultant");
    std::string sigs;
    Spit(P("spec.yaml"), spec_text);
    for (const auto& p : parties) Ok("keygen --name " + p + " --out " + Q(P("keys")));
    Ok("secret new --out " + Q(P("shared.secret")));
    Ok("room init --key-store test-plain --room " + Q(P("room")) + " --spec " + Q(P("spec.yaml")));
    for (const auto& p : parties) {
      Ok("spec sign --spec " + Q(P("spec.yaml")) + " --key " + Q(P("keys/" + p + ".key")));
      sigs += " " + Q(P("spec.yaml." + p + ".sig"));
    }
    Ok("room activate --room " + Q(P("room")) + " --sig" + sigs);
  }

  // Writes `bank`'s rows of `spend` (each line an equal share of its total).
  std::string WriteCsv(const std::string& bank, const std::vector<Spend>& spend,
                       const std::string& tag = "") {
    std::string csv = "line_id,category,amount\n";
    for (const auto& s : spend) {
      if (s.bank != bank) continue;
      for (int i = 0; i < s.lines; ++i) {
        csv += bank + "-" + s.category + tag + "-" + std::to_string(i) + "," + s.category + "," +
               std::to_string(s.total / s.lines) + "\n";
      }
    }
    std::string path = P(bank + tag + ".csv");
    Spit(path, csv);
    return path;
  }

  RunResult Contribute(const std::string& bank, const std::string& csv, const std::string& pkg) {
    auto prepared = Prepare("spend", csv, "keys/" + bank + ".key", pkg);
    if (prepared.exit_code != 0) return prepared;
    return Ingest(P(pkg));
  }

  void ContributeAll(const std::vector<Spend>& spend) {
    for (const auto& b : kBanks) {
      auto r = Contribute(b, WriteCsv(b, spend), b + ".crpkg");
      ASSERT_EQ(r.exit_code, 0) << b << ": " << r.err;
    }
  }

  RunResult Query(const std::string& sql, const std::string& who = "consultant",
                  const std::string& flags = "") {
    return Run("--room " + Q(P("room")) + " --key " + Q(P("keys/" + who + ".key")) +
               " --format json query --sql " + Q(sql) + (flags.empty() ? "" : " " + flags));
  }

  json QueryJson(const std::string& sql, const std::string& flags = "") {
    auto r = Query(sql, "consultant", flags);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out, nullptr, false);
  }

  json Get(const std::string& who, const std::string& id) {
    auto r = Run("--room " + Q(P("room")) + " --key " + Q(P("keys/" + who + ".key")) +
                 " --format json results get --id " + id);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out, nullptr, false);
  }

  json DatasetsJson() {
    auto r = Ok("--room " + Q(P("room")) + " --format json datasets");
    return json::parse(r.out, nullptr, false);
  }

  // category -> SUM(amount) of the released rows of a "category, spend" answer.
  static std::map<std::string, double> Released(const json& j) {
    std::map<std::string, double> out;
    for (const auto& row : j["rows"]) out[row[0].get<std::string>()] = row[1].get<double>();
    return out;
  }

  const std::string by_category_ =
      "SELECT category, SUM(amount) AS spend, COUNT(DISTINCT line_id) AS lines FROM spend "
      "GROUP BY category ORDER BY category";
};

TEST_F(PoolE2e, EachCellRuleWithholdsExactlyTheCellsItShould) {
  SetUpPool(PoolSpec(Rules(true, true)));
  ContributeAll(kSpend);
  json j = QueryJson(by_category_);
  ASSERT_TRUE(j.is_object());
  // Expected from the rows written, rule by rule.
  std::set<std::string> expected;
  for (const auto& [cell, parts] : ByCell(kSpend)) {
    if (parts.size() >= 3 && PassesDominance(parts, 1, 0.6) && PassesPPercent(parts, 10)) {
      expected.insert(cell);
    }
  }
  ASSERT_EQ(expected, std::set<std::string>({"cloud"}));  // the data is what the comments say
  auto released = Released(j);
  ASSERT_EQ(released.size(), 1u) << j.dump();
  double cloud = 0;
  for (const auto& [bank, x] : ByCell(kSpend)["cloud"]) cloud += x;
  EXPECT_NEAR(released["cloud"], cloud, 1e-6);
  EXPECT_EQ(j["withheld_rows"], 3) << j.dump();
  // Per rule, the cells failing it (mainframe fails two: two banks, and
  // nothing beside its two largest for the p% rule).
  int few = 0, dominated = 0, estimable = 0;
  for (const auto& [cell, parts] : ByCell(kSpend)) {
    few += parts.size() < 3;
    dominated += !PassesDominance(parts, 1, 0.6);
    estimable += !PassesPPercent(parts, 10);
  }
  EXPECT_EQ(j["withheld_by"], json({{"min_distinct_units", 0},
                                    {"min_contributors", few},
                                    {"dominance", dominated},
                                    {"p_percent", estimable}}))
      << j.dump();
  EXPECT_EQ(estimable, 2);
  // The table names the rules, never a value.
  auto t = Ok("--room " + Q(P("room")) + " --key " + Q(P("keys/consultant.key")) + " query --sql " +
              Q(by_category_));
  EXPECT_NE(t.out.find("withheld by the cell rules: min_contributors 1, dominance 1, p_percent 2"),
            std::string::npos)
      << t.out;
  EXPECT_EQ(t.out.find("700"), std::string::npos) << t.out;
}

TEST_F(PoolE2e, FewerContributorsThanRequiredIsWithheldEvenWithManyUnits) {
  SetUpPool(PoolSpec(Rules(false, false)));
  ContributeAll(kSpend);
  json j = QueryJson(by_category_);
  auto released = Released(j);
  // mainframe: 120 budget lines (far above 5 units) from two banks only.
  EXPECT_FALSE(released.count("mainframe")) << j.dump();
  // Without dominance or p%, network and security are released: the rules
  // of the next tests are what withholds them.
  EXPECT_TRUE(released.count("network") && released.count("security")) << j.dump();
  EXPECT_NEAR(released["network"], 1000, 1e-6);
  EXPECT_EQ(j["withheld_by"]["min_contributors"], 1) << j.dump();
  EXPECT_EQ(j["withheld_by"]["min_distinct_units"], 0) << j.dump();
}

TEST_F(PoolE2e, DominanceAloneWithholdsTheDominatedCell) {
  SetUpPool(PoolSpec(Rules(true, false)));
  ContributeAll(kSpend);
  auto released = Released(QueryJson(by_category_));
  auto cells = ByCell(kSpend);
  EXPECT_FALSE(PassesDominance(cells["network"], 1, 0.6));
  EXPECT_FALSE(released.count("network"));
  EXPECT_TRUE(PassesDominance(cells["security"], 1, 0.6));
  EXPECT_TRUE(released.count("security"));
  EXPECT_TRUE(released.count("cloud"));
  // An AVG is a sum over a count: it is protected the same way.
  auto avg = Released(QueryJson("SELECT category, AVG(amount) AS a FROM spend GROUP BY category"));
  EXPECT_FALSE(avg.count("network"));
  EXPECT_TRUE(avg.count("cloud"));
}

TEST_F(PoolE2e, DominanceWithTwoContributorsIsComputedOverTheTopTwo) {
  SetUpPool(PoolSpec("      min_contributors: 3\n      dominance: {n: 2, k: 0.55}\n"));
  ContributeAll(kSpend);
  auto released = Released(QueryJson(by_category_));
  auto cells = ByCell(kSpend);
  for (const std::string cell : {"cloud", "network", "security"}) {
    EXPECT_EQ(released.count(cell) == 1, PassesDominance(cells[cell], 2, 0.55)) << cell;
  }
  EXPECT_TRUE(released.count("cloud"));     // the top two: 8100 of 15600 (52%)
  EXPECT_FALSE(released.count("network"));  // 800 of 1000
}

TEST_F(PoolE2e, PPercentAloneWithholdsTheEstimableCell) {
  SetUpPool(PoolSpec(Rules(false, true)));
  ContributeAll(kSpend);
  auto released = Released(QueryJson(by_category_));
  auto cells = ByCell(kSpend);
  EXPECT_FALSE(PassesPPercent(cells["security"], 10));
  EXPECT_FALSE(released.count("security"));
  EXPECT_TRUE(PassesPPercent(cells["network"], 10));
  EXPECT_TRUE(released.count("network"));
  EXPECT_TRUE(released.count("cloud"));
}

TEST_F(PoolE2e, AReplacementLeavesTheOtherPartsIntact) {
  SetUpPool(PoolSpec(Rules(false, false)));
  ContributeAll(kSpend);
  json before = DatasetsJson()["datasets"][0];
  ASSERT_EQ(before["contributors"].size(), 5u) << before.dump();
  // bank-c re-contributes: cloud 2500 -> 6000, and no network line.
  std::vector<Spend> again = {{"bank-c", "cloud", 12, 6000}, {"bank-c", "security", 10, 20}};
  auto r = Contribute("bank-c", WriteCsv("bank-c", again, "-v2"), "bank-c-v2.crpkg");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json after = DatasetsJson()["datasets"][0];
  for (size_t i = 0; i < kBanks.size(); ++i) {
    const json& b = before["contributors"][i];
    const json& a = after["contributors"][i];
    ASSERT_EQ(a["name"], kBanks[i]);
    if (kBanks[i] == "bank-c") {
      EXPECT_NE(a["package_id"], b["package_id"]);
      EXPECT_EQ(a["rows"], 22);
    } else {
      EXPECT_EQ(a, b) << kBanks[i];
    }
  }
  EXPECT_EQ(after["contributions"], 6);
  EXPECT_EQ(after["rows"].get<int64_t>(), before["rows"].get<int64_t>() - 30 + 22);
  // The answer is the union of the latest parts.
  std::vector<Spend> now;
  for (const auto& s : kSpend) {
    if (s.bank != "bank-c") now.push_back(s);
  }
  now.insert(now.end(), again.begin(), again.end());
  auto released = Released(QueryJson(by_category_));
  double cloud = 0;
  for (const auto& [bank, x] : ByCell(now)["cloud"]) cloud += x;
  EXPECT_NEAR(released["cloud"], cloud, 1e-6);
  // network now has three contributors (a, b, d): still released, without bank-c's 100.
  EXPECT_NEAR(released["network"], 900, 1e-6);
}

TEST_F(PoolE2e, TheContributorColumnIsRefusedEverywhere) {
  SetUpPool(PoolSpec(Rules(false, false)));
  ContributeAll(kSpend);
  const std::vector<std::string> attacks = {
      "SELECT __cr_contributor, SUM(amount) AS s FROM spend GROUP BY __cr_contributor",
      "SELECT category, SUM(amount) AS s FROM spend WHERE __cr_contributor = 0 GROUP BY category",
      "SELECT category, SUM(amount) AS s FROM spend GROUP BY category, __cr_contributor",
      "SELECT a.category, SUM(a.amount) AS s FROM spend a JOIN spend b ON a.__cr_contributor = "
      "b.__cr_contributor GROUP BY a.category",
      "SELECT category, COUNT(DISTINCT __cr_contributor) AS n FROM spend GROUP BY category",
      "SELECT abs(__cr_contributor) AS c, SUM(amount) AS s FROM spend GROUP BY "
      "abs(__cr_contributor)",
      "SELECT category, SUM(amount) AS s FROM spend GROUP BY category HAVING MAX(__cr_contributor) "
      "> 1",
      "SELECT file_index, SUM(amount) AS s FROM spend GROUP BY file_index",
      "SELECT filename, SUM(amount) AS s FROM spend GROUP BY filename",
  };
  for (const auto& sql : attacks) {
    auto r = Query(sql);
    ExpectRefused(r, 3, "QUERY_REFUSED");
    EXPECT_EQ(r.out, "") << sql;
  }
  // Nor can a spec declare it: the room's prefix is reserved.
  std::string spec = PoolSpec(Rules(false, false));
  spec.insert(spec.find("      category:"),
              "      __cr_contributor: {type: integer, role: dimension}\n");
  Spit(P("bad.yaml"), spec);
  ExpectRefused(Run("spec check --spec " + Q(P("bad.yaml"))), 7, "SPEC_INVALID");
}

TEST_F(PoolE2e, APartyThatIsNotAContributorCannotContribute) {
  SetUpPool(PoolSpec(Rules(false, false)));
  std::vector<Spend> mine = {{"outsider", "cloud", 10, 1000}};
  auto r = Prepare("spend", WriteCsv("outsider", mine), "keys/outsider.key", "out.crpkg");
  ExpectRefused(r, 5, "NOT_AUTHORIZED");
  EXPECT_FALSE(std::filesystem::exists(P("out.crpkg")));
  EXPECT_EQ(DatasetsJson()["datasets"][0]["contributions"], 0);
}

TEST_F(PoolE2e, AContributorReceivesOnlyItsOwnFigureBesideThePeers) {
  SetUpPool(PoolSpec(Rules(true, true)));
  ContributeAll(kSpend);
  json j = QueryJson("SELECT category, SUM(amount) AS spend FROM spend GROUP BY category",
                     "--benchmark");
  ASSERT_TRUE(j.is_object());
  // The consultant (no part of its own) sees the peers' figures only.
  const json peer_columns = {"category",          "spend",         "spend_peer_mean",
                             "spend_peer_median", "spend_peer_q1", "spend_peer_q3"};
  EXPECT_EQ(j["columns"], peer_columns) << j.dump();
  ASSERT_EQ(j["rows"].size(), 1u) << j.dump();  // only cloud passes every rule
  std::vector<double> cloud;
  for (const auto& [bank, x] : ByCell(kSpend)["cloud"]) cloud.push_back(x);
  const json& row = j["rows"][0];
  EXPECT_EQ(row[0], "cloud");
  EXPECT_NEAR(row[2].get<double>(), (4100 + 3200 + 2500 + 4000 + 1800) / 5.0, 1e-6);
  EXPECT_NEAR(row[3].get<double>(), Quantile(cloud, 0.5), 1e-6);
  EXPECT_NEAR(row[4].get<double>(), Quantile(cloud, 0.25), 1e-6);
  EXPECT_NEAR(row[5].get<double>(), Quantile(cloud, 0.75), 1e-6);
  const std::string id = j["result_id"].get<std::string>();
  // Each bank opens the same result with its own figure beside the peers'.
  for (const auto& bank : kBanks) {
    json mine = Get(bank, id);
    EXPECT_EQ(mine["columns"], json({"category", "spend", "spend_own", "spend_peer_mean",
                                     "spend_peer_median", "spend_peer_q1", "spend_peer_q3"}));
    ASSERT_EQ(mine["rows"].size(), 1u);
    EXPECT_NEAR(mine["rows"][0][2].get<double>(), ByCell(kSpend)["cloud"][bank], 1e-6) << bank;
    // Everything else is what the consultant has.
    json rest = mine["rows"][0];
    rest.erase(2);
    EXPECT_EQ(rest, row) << bank;
  }
}

TEST_F(PoolE2e, DatasetsAndStatusShowWhoHasContributed) {
  SetUpPool(PoolSpec(Rules(false, false)));
  for (const std::string bank : {"bank-a", "bank-d"}) {
    ASSERT_EQ(Contribute(bank, WriteCsv(bank, kSpend), bank + ".crpkg").exit_code, 0);
  }
  json d = DatasetsJson()["datasets"][0];
  EXPECT_TRUE(d["owner"].is_null());
  EXPECT_EQ(d["state"], "stored");
  std::vector<bool> contributed;
  for (const auto& c : d["contributors"]) contributed.push_back(c["contributed"].get<bool>());
  EXPECT_EQ(contributed, std::vector<bool>({true, false, false, true, false})) << d.dump();
  EXPECT_EQ(d["rows"], (10 + 60 + 10 + 10) + (10 + 10 + 10));  // bank-a's and bank-d's lines
  auto st = Ok("--room " + Q(P("room")) + " --format json status");
  json s = json::parse(st.out);
  EXPECT_EQ(s["pools"][0]["dataset"], "spend");
  EXPECT_EQ(s["pools"][0]["contributors"][1], json({{"name", "bank-b"}, {"contributed", false}}));
  auto text = Ok("--room " + Q(P("room")) + " status");
  EXPECT_NE(text.out.find("spend: contributed bank-a, bank-d; not yet bank-b, bank-c, bank-e"),
            std::string::npos)
      << text.out;
  auto table = Ok("--room " + Q(P("room")) + " datasets");
  EXPECT_NE(table.out.find("spend (pooled, 2 of 5 contributors): stored"), std::string::npos)
      << table.out;
  // Too few contributors so far: nothing is released, whatever the units.
  json j = QueryJson(by_category_);
  EXPECT_TRUE(j["rows"].empty()) << j.dump();
}

TEST_F(PoolE2e, TheServerShowsTheSameContributorsAndAnswersBenchmarks) {
  SetUpPool(PoolSpec(Rules(true, true)));
  for (const std::string bank : {"bank-a", "bank-b", "bank-c", "bank-d"}) {
    ASSERT_EQ(Contribute(bank, WriteCsv(bank, kSpend), bank + ".crpkg").exit_code, 0);
  }
  std::string local_datasets = Ok("--room " + Q(P("room")) + " --format json datasets").out;
  std::string local_status = Ok("--room " + Q(P("room")) + " --format json status").out;
  auto server = demo::ServeProcess::Start({.binary = Bin(),
                                           .room = P("room"),
                                           .tls = {},
                                           .extra_args = {},
                                           .log_path = P("serve.log")});
  ASSERT_TRUE(server) << server.error().message << "\n" << Slurp(P("serve.log"));
  auto at = [&](const std::string& who) {
    return "--server " + server->url() + " --key " + Q(P("keys/" + who + ".key")) +
           " --format json ";
  };
  EXPECT_EQ(Ok(at("consultant") + "datasets").out, local_datasets);
  json remote_status = json::parse(Ok(at("consultant") + "status").out);
  EXPECT_EQ(remote_status["pools"], json::parse(local_status)["pools"]);
  auto r = Ok(at("consultant") + "query --benchmark --sql " +
              Q("SELECT category, SUM(amount) AS spend FROM spend GROUP BY category"));
  json j = json::parse(r.out);
  EXPECT_EQ(j["columns"].size(), 6u) << r.out;  // the peers' figures, no _own
  json mine =
      json::parse(Ok(at("bank-b") + "results get --id " + j["result_id"].get<std::string>()).out);
  EXPECT_EQ(mine["columns"][2], "spend_own") << mine.dump();
  EXPECT_TRUE(server->Stop());
}

// The differencing pair of the DP issue over a pooled dataset: the sum over
// cloud and one lone extra line, minus the sum over cloud, is that line's
// amount exactly without DP; with require_dp it is noise.
class PoolDifferencingE2e : public PoolE2e {
 protected:
  std::vector<Spend> Data() {
    std::vector<Spend> d = kSpend;
    d.push_back({"bank-e", "target", 1, 777});
    return d;
  }
  double Sum(const json& j) {
    const json& c = j["rows"][0][0];
    return c.is_object() ? c["value"].get<double>() : c.get<double>();
  }
  const std::string both_ =
      "SELECT SUM(amount) AS s FROM spend WHERE category IN ('cloud', 'target')";
  const std::string cloud_ = "SELECT SUM(amount) AS s FROM spend WHERE category = 'cloud'";
};

TEST_F(PoolDifferencingE2e, WithoutDpOrDifferenceChecksTheDifferenceIsExact) {
  // The control: with the checks turned off the pair gives the line away.
  SetUpPool(PoolSpec(Rules(false, false), "  difference_checks: false\n"));
  ContributeAll(Data());
  json a = QueryJson(both_), b = QueryJson(cloud_);
  ASSERT_EQ(a["rows"].size(), 1u) << a.dump();
  ASSERT_EQ(b["rows"].size(), 1u) << b.dump();
  EXPECT_NEAR(Sum(a) - Sum(b), 777, 1e-6);
}

TEST_F(PoolDifferencingE2e, DifferenceChecksWithholdTheSecondOfThePairByDefault) {
  SetUpPool(PoolSpec(Rules(false, false)));
  ContributeAll(Data());
  json a = QueryJson(both_);
  ASSERT_EQ(a["rows"].size(), 1u) << a.dump();
  json b = QueryJson(cloud_);
  EXPECT_TRUE(b["rows"].empty()) << b.dump();
  EXPECT_EQ(b["withheld_rows"], 1) << b.dump();
}

TEST_F(PoolDifferencingE2e, WithDpTheDifferenceIsNoise) {
  SetUpPool(
      PoolSpec(Rules(false, false),
               "  dp: {epsilon: 2, delta: 1.0e-6, max_groups_per_unit: 1, refresh: monthly}\n",
               "      require_dp: true\n"));
  ContributeAll(Data());
  json a = QueryJson(both_, "--epsilon 0.5");
  json b = QueryJson(cloud_, "--epsilon 0.5");
  ASSERT_TRUE(a["rows"][0][0].is_object()) << a.dump();
  EXPECT_GT(std::abs(Sum(a) - Sum(b) - 777), 1e-6) << "the exact value came out";
  EXPECT_EQ(QueryJson(both_, "--epsilon 0.5")["rows"], a["rows"]);  // stored: nothing to average
  // A benchmark is exact per contributor: refused under DP.
  ExpectRefused(Query(cloud_, "consultant", "--benchmark --epsilon 0.5"), 3, "QUERY_REFUSED");
}

// A pooled dataset whose every unit is in one row is counted without
// DISTINCT, and the difference checks fetch a cell's units only when they
// need them (query::TableRef::unique_units). The room decides it at ingest,
// per part; these tests make it decide both ways: the answers must not
// depend on it, and a unit reported by two contributors, or twice by one,
// must turn it off and still be counted once.
class PoolUnitsE2e : public PoolDifferencingE2e {
 protected:
  // Per bank (spec order), what `datasets` says of its part.
  std::vector<bool> InOneRow() {
    json d = DatasetsJson();
    std::vector<bool> out;
    for (const auto& c : d["datasets"][0]["contributors"]) {
      out.push_back(c.value("units_in_one_row", false));
    }
    return out;
  }
  // `bank`'s rows of `spend` plus `extra` lines (id, category, amount) as written.
  std::string WriteWith(const std::string& bank, const std::vector<Spend>& spend,
                        const std::vector<std::tuple<std::string, std::string, double>>& extra) {
    std::string path = WriteCsv(bank, spend);
    std::string csv = Slurp(path);
    for (const auto& [id, category, amount] : extra) {
      csv += id + "," + category + "," + std::to_string(amount) + "\n";
    }
    Spit(path, csv);
    return path;
  }
  // category -> (spend, lines) of the released rows of by_category_.
  std::map<std::string, std::pair<double, int64_t>> Cells(const json& j) {
    std::map<std::string, std::pair<double, int64_t>> out;
    for (const auto& row : j["rows"]) {
      out[row[0].get<std::string>()] = {row[1].get<double>(), row[2].get<int64_t>()};
    }
    return out;
  }
};

TEST_F(PoolUnitsE2e, WithEveryLineInOneRowThePairIsStoppedAndAnAnswerRepeatsUnchanged) {
  SetUpPool(PoolSpec(Rules(false, false)));
  ContributeAll(Data());
  EXPECT_EQ(InOneRow(), std::vector<bool>(5, true));
  json a = QueryJson(both_);
  ASSERT_EQ(a["rows"].size(), 1u) << a.dump();
  json b = QueryJson(cloud_);
  EXPECT_TRUE(b["rows"].empty()) << b.dump();
  EXPECT_EQ(b["withheld_rows"], 1) << b.dump();
  // The same cell again is the same set: released, with the same value.
  json again = QueryJson(both_);
  ASSERT_EQ(again["rows"].size(), 1u) << again.dump();
  EXPECT_NEAR(Sum(again), Sum(a), 1e-9);
  // A cell 40 lines away from both: released.
  json wider = QueryJson(
      "SELECT SUM(amount) AS s FROM spend WHERE category IN ('cloud', 'target', 'network')");
  ASSERT_EQ(wider["rows"].size(), 1u) << wider.dump();
  // What each cell holds, computed here from the rows written.
  std::map<std::string, std::pair<double, int64_t>> want;
  for (const auto& sp : Data()) {
    want[sp.category].first += sp.total;
    want[sp.category].second += sp.lines;
  }
  json cells = QueryJson(by_category_);
  for (const auto& [category, got] : Cells(cells)) {
    EXPECT_NEAR(got.first, want[category].first, 1e-6) << category;
    EXPECT_EQ(got.second, want[category].second) << category;
  }
  // The cloud cell is the pair's second half again, asked through GROUP BY.
  EXPECT_FALSE(Cells(cells).count("cloud")) << cells.dump();
  EXPECT_TRUE(Cells(cells).count("network")) << cells.dump();
}

TEST_F(PoolUnitsE2e, ALineListedTwiceInOnePartIsCountedOnceAndThePairIsStillStopped) {
  SetUpPool(PoolSpec(Rules(false, false)));
  // bank-a lists its first cloud line a second time, with nothing spent:
  // the sums stay, the cloud cell still has 50 lines, not 51 rows' worth.
  for (const auto& bank : kBanks) {
    std::vector<std::tuple<std::string, std::string, double>> extra;
    if (bank == "bank-a") extra.emplace_back("bank-a-cloud-0", "cloud", 0.0);
    auto r = Contribute(bank, WriteWith(bank, Data(), extra), bank + ".crpkg");
    ASSERT_EQ(r.exit_code, 0) << bank << ": " << r.err;
  }
  EXPECT_EQ(InOneRow(), (std::vector<bool>{false, true, true, true, true}));
  json a = QueryJson(
      "SELECT COUNT(DISTINCT line_id) AS n, SUM(amount) AS s FROM spend WHERE category IN "
      "('cloud', 'target')");
  ASSERT_EQ(a["rows"].size(), 1u) << a.dump();
  EXPECT_EQ(a["rows"][0][0], 51) << a.dump();
  EXPECT_NEAR(a["rows"][0][1].get<double>(), 4100 + 3200 + 2500 + 4000 + 1800 + 777, 1e-6);
  json b = QueryJson(cloud_);
  EXPECT_TRUE(b["rows"].empty()) << b.dump();
  EXPECT_EQ(b["withheld_rows"], 1) << b.dump();
  auto cells = Cells(QueryJson(by_category_));
  EXPECT_FALSE(cells.count("cloud"));  // the pair again
  ASSERT_TRUE(cells.count("network"));
  EXPECT_NEAR(cells["network"].first, 1000, 1e-6);
  EXPECT_EQ(cells["network"].second, 40);
}

TEST_F(PoolUnitsE2e, ThreeContributorsReportingTheSameThreeLinesAreThreeUnitsNotNine) {
  // min_distinct_units is 5 and min_contributors 3. bank-c, bank-d and
  // bank-e each report the same three lines under "shared": three
  // contributors, nine rows, three people. Counted by rows the cell would
  // pass; it must be withheld.
  SetUpPool(PoolSpec(Rules(false, false)));
  for (const auto& bank : kBanks) {
    std::vector<std::tuple<std::string, std::string, double>> extra;
    if (bank == "bank-c" || bank == "bank-d" || bank == "bank-e") {
      for (int i = 0; i < 3; ++i) extra.emplace_back("shared-" + std::to_string(i), "shared", 10.0);
    }
    auto r = Contribute(bank, WriteWith(bank, kSpend, extra), bank + ".crpkg");
    ASSERT_EQ(r.exit_code, 0) << bank << ": " << r.err;
  }
  // bank-c was the first with the lines; bank-d's and bank-e's parts meet them.
  EXPECT_EQ(InOneRow(), (std::vector<bool>{true, true, true, false, false}));
  json j = QueryJson(by_category_);
  auto cells = Cells(j);
  EXPECT_FALSE(cells.count("shared")) << j.dump();
  EXPECT_TRUE(cells.count("cloud")) << j.dump();
  json shared = QueryJson(
      "SELECT COUNT(DISTINCT line_id) AS lines, SUM(amount) AS s FROM spend WHERE category = "
      "'shared'");
  EXPECT_TRUE(shared["rows"].empty()) << shared.dump();
  // bank-d takes its copy back: its new part meets nobody's lines, bank-e's
  // (ingested before) still says no, so the room still counts exactly.
  auto r = Contribute("bank-d", WriteCsv("bank-d", kSpend, "-again"), "bank-d-again.crpkg");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(InOneRow(), (std::vector<bool>{true, true, true, true, false}));
  shared = QueryJson(
      "SELECT COUNT(DISTINCT line_id) AS lines, SUM(amount) AS s FROM spend WHERE category = "
      "'shared'");
  EXPECT_TRUE(shared["rows"].empty()) << shared.dump();
}


}  // namespace
}  // namespace cr::testing
