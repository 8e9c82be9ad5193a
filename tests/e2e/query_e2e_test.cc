// Governed queries end to end through the binary: the attack suite refused
// with nothing touched, answers equal plain DuckDB on the plaintext CSVs minus
// the rows under the threshold, results sealed to receivers only, templates,
// list and custom rules, and the audit trail.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/demo_queries.h"
#include "client/client.h"
#include "demo/serve_process.h"
#include "common/files.h"
#include "crypto/crypto.h"
#include "engine/engine.h"
#include "query/executor.h"
#include "query/plan.h"
#include "query/query_spec.h"
#include "query/query_test_util.h"
#include "room/room.h"
#include "testing/temp_dir.h"

namespace cr::testing {
namespace {

using nlohmann::json;
using cr::testing::ReadSqlCases;
using cr::testing::ErrorCodeOf;
using cr::testing::ErrorMessageOf;

// One room for the whole suite (setting it up is the slow part).
class QueryE2e : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    Must("keygen --name acme --out " + Q(P("keys")));
    Must("keygen --name newsco --out " + Q(P("keys")));
    Must("keygen --name analyst --out " + Q(P("keys")));
    Must("keygen --name outsider --out " + Q(P("other")));
    Must("secret new --out " + Q(P("shared.secret")));
    Spit(P("spec.yaml"), kQuerySpec);
    Must("room init --region eu --room " + Q(P("room")) + " --spec " + Q(P("spec.yaml")));
    std::string sigs;
    for (const char* party : {"acme", "newsco", "analyst"}) {
      Must("spec sign --spec " + Q(P("spec.yaml")) + " --key " + Q(P(std::string("keys/") + party + ".key")));
      sigs += " " + Q(P(std::string("spec.yaml.") + party + ".sig"));
    }
    Must("room activate --room " + Q(P("room")) + " --sig" + sigs);
    Must("generate --kind impressions --rows 12000 --people 3000 --out " + Q(P("impressions.csv")));
    Must("generate --kind purchases --rows 4000 --people 3000 --out " + Q(P("purchases.csv")));
    // Side datasets keyed by the same people, derived from the impressions.
    auto db = engine::Database::Open();
    ASSERT_TRUE(db);
    std::string people = "(SELECT e, row_number() OVER (ORDER BY e) AS rn FROM (SELECT DISTINCT "
                         "NULLIF(lower(trim(email)), '') AS e FROM " + Csv("impressions.csv") +
                         ") WHERE e IS NOT NULL)";
    ASSERT_TRUE(db->Execute("COPY (SELECT e AS email, CASE WHEN rn <= 5 THEN 'rare' WHEN rn % 2 = 0 "
                            "THEN 'even' ELSE 'odd' END AS segment, CASE WHEN rn % 2 = 0 THEN "
                            "'north' ELSE 'south' END AS region FROM " + people + ") TO " +
                            engine::QuoteLiteral(P("segments.csv")) + " (HEADER)"));
    ASSERT_TRUE(db->Execute("COPY (SELECT e AS email, CASE WHEN rn % 3 = 0 THEN 'sports' ELSE "
                            "'news' END AS interest FROM " + people + ") TO " +
                            engine::QuoteLiteral(P("audiences.csv")) + " (HEADER)"));
    ASSERT_TRUE(db->Execute("COPY (SELECT e AS email, CASE WHEN rn % 3 = 0 THEN 'alpha' WHEN rn % 3 = 1 "
                            "THEN 'beta' ELSE 'gamma' END AS site, (rn * 7) % 5000 AS seconds FROM " +
                            people + ") TO " + engine::QuoteLiteral(P("visits.csv")) + " (HEADER)"));
    struct D { const char* name; const char* owner; };
    for (D d : {D{"impressions", "newsco"}, D{"purchases", "acme"}, D{"segments", "acme"},
                D{"audiences", "newsco"}, D{"visits", "newsco"}}) {
      Must("prepare --spec " + Q(P("spec.yaml")) + " --dataset " + d.name + " --input " +
           Q(P(std::string(d.name) + ".csv")) + " --key " + Q(P(std::string("keys/") + d.owner + ".key")) +
           " --secret " + Q(P("shared.secret")) + " --room-pub " + Q(P("room/room.pub")) + " --out " +
           Q(P(std::string(d.name) + ".crpkg")));
      Must("--room " + Q(P("room")) + " ingest " + Q(P(std::string(d.name) + ".crpkg")));
    }
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  static std::string P(const std::string& rel) { return *dir_ / rel; }
  static std::string Csv(const std::string& name) {
    return "read_csv(" + engine::QuoteLiteral(P(name)) + ", header = true, all_varchar = true)";
  }
  static RunResult Run(const std::string& args) {
    return RunShell(Q(CLEANROOM_BINARY) + " " + args);
  }
  static void Must(const std::string& args) {
    auto r = Run(args);
    ASSERT_EQ(r.exit_code, 0) << args << "\n" << r.err;
  }
  static std::string As(const std::string& party) {
    std::string key = party == "outsider" ? P("other/outsider.key") : P("keys/" + party + ".key");
    return "--room " + Q(P("room")) + " --key " + Q(key);
  }
  static RunResult Query(const std::string& party, const std::string& sql,
                         const std::string& format = "json") {
    return Run(As(party) + " --format " + format + " query --sql " + Q(sql));
  }
  static std::string ErrorCode(const RunResult& r) { return ErrorCodeOf(r); }
  static json Json(const RunResult& r) {
    auto j = json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out << r.err;
    return j;
  }
  // The plaintext answer: the same aggregation in plain DuckDB over the CSVs,
  // emails normalised as prepare does, metrics clamped, groups under k removed.
  static json Expected(const std::string& sql, int64_t k, int64_t* withheld = nullptr) {
    auto db = engine::Database::Open();
    EXPECT_TRUE(db);
    EXPECT_TRUE(db->Execute(
        "CREATE VIEW impressions AS SELECT NULLIF(lower(trim(email)), '') AS email, campaign, "
        "CAST(shown_at AS TIMESTAMP) AS shown_at, LEAST(GREATEST(CAST(cost AS DOUBLE), 0), 5) AS cost FROM " +
        Csv("impressions.csv")));
    EXPECT_TRUE(db->Execute(
        "CREATE VIEW purchases AS SELECT NULLIF(lower(trim(email)), '') AS email, "
        "LEAST(GREATEST(CAST(amount AS DOUBLE), 0), 300) AS amount, CAST(day AS DATE) AS day FROM " +
        Csv("purchases.csv")));
    auto all = db->Query("SELECT * FROM (" + sql + ") ORDER BY ALL");
    EXPECT_TRUE(all) << (all ? "" : all.error().message);
    json rows = json::array();
    int64_t w = 0;
    for (size_t r = 0; r < all->row_count(); ++r) {
      // The last column is the unit count the test query carries.
      if (std::stoll(*all->at(r, all->column_count() - 1)) < k) {
        ++w;
        continue;
      }
      json row = json::array();
      for (size_t c = 0; c + 1 < all->column_count(); ++c) {
        const auto& v = all->at(r, c);
        const auto& t = all->types()[c];
        if (!v) {
          row.push_back(nullptr);
        } else if (t == "BIGINT" || t == "HUGEINT" || t == "INTEGER") {
          row.push_back(std::stoll(*v));
        } else if (t == "DOUBLE") {
          row.push_back(std::stod(*v));
        } else {
          row.push_back(*v);
        }
      }
      rows.push_back(row);
    }
    if (withheld) *withheld = w;
    return rows;
  }
  static void ExpectSameRows(json got, json want) {
    auto key = [](const json& a, const json& b) { return a.dump() < b.dump(); };
    // Sort on the first column (the group key) for a stable comparison.
    auto by_first = [](const json& a, const json& b) { return a[0].dump() < b[0].dump(); };
    std::sort(got.begin(), got.end(), by_first);
    std::sort(want.begin(), want.end(), by_first);
    (void)key;
    ASSERT_EQ(got.size(), want.size()) << got.dump() << "\n" << want.dump();
    for (size_t r = 0; r < got.size(); ++r) {
      ASSERT_EQ(got[r].size(), want[r].size());
      for (size_t c = 0; c < got[r].size(); ++c) {
        if (want[r][c].is_number_float() || got[r][c].is_number_float()) {
          double g = got[r][c].get<double>(), w = want[r][c].get<double>();
          EXPECT_NEAR(g, w, 1e-6 * std::max(1.0, std::abs(w))) << r << "," << c;
        } else {
          EXPECT_EQ(got[r][c], want[r][c]) << r << "," << c;
        }
      }
    }
  }

  static TempDir* dir_;
};

TempDir* QueryE2e::dir_ = nullptr;

// Every line of attacks.txt and invalid.txt through the binary: the exit code
// of its expected code, that code on stderr and the reason it claims. EXPECT
// (not ASSERT) so every failing line is reported with its number.
TEST_F(QueryE2e, AttackSuiteRefusedThroughTheBinaryTouchingNothing) {
  auto before = Snapshot(P("room"), "audit.log");
  size_t audit_before = Slurp(P("room/audit.log")).size();
  const std::map<std::string, int> kExit = {{"QUERY_REFUSED", 3}, {"SQL_INVALID", 7}, {"BAD_INPUT", 7}};
  size_t total = 0;
  for (const char* file : {"attacks.txt", "invalid.txt"}) {
    auto cases = ReadSqlCases(file);
    EXPECT_GE(cases.size(), 5u) << file;
    for (const auto& c : cases) {
      ++total;
      const std::string where = fmt::format("{}:{}: {}", file, c.line, c.sql);
      auto code = kExit.find(c.code);
      if (code == kExit.end() || c.reason.empty()) {
        ADD_FAILURE() << where << ": needs \"| CODE | reason\" with a known code";
        continue;
      }
      auto r = Query("acme", c.sql);
      EXPECT_EQ(r.exit_code, code->second) << where << "\n" << r.err;
      EXPECT_EQ(ErrorCode(r), c.code) << where << "\n" << r.err;
      EXPECT_NE(ErrorMessageOf(r).find(c.reason), std::string::npos)
          << where << "\nexpected reason \"" << c.reason << "\", got: " << r.err;
      EXPECT_TRUE(r.out.empty()) << where << "\n" << r.out;
    }
  }
  // No result was stored, nothing but the audit log changed, and every
  // refusal is in the log, without the literals of the queries.
  EXPECT_EQ(Snapshot(P("room"), "audit.log"), before);
  std::string audit = Slurp(P("room/audit.log")).substr(audit_before);
  size_t refusals = 0;
  for (size_t pos = 0; (pos = audit.find("\"query.refused\"", pos)) != std::string::npos; ++pos) ++refusals;
  EXPECT_EQ(refusals, total);
  EXPECT_EQ(audit.find("jane.doe1@example.com"), std::string::npos);
  Must("--room " + Q(P("room")) + " audit verify");
}

// A syntax error in multi-line SQL names the line, the column and the token,
// and shows that line with a caret under the token; nothing changes.
TEST_F(QueryE2e, SyntaxErrorsPointAtLineColumnAndToken) {
  auto before = Snapshot(P("room"), "audit.log");
  const std::string sql =
      "SELECT campaign,\n"
      "       COUNT(DISTINCT email) AS people\n"
      "FROM impressions\n"
      "WHERE campaign = 'spring' GRUOP BY campaign";
  auto r = Query("acme", sql, "table");  // the caret is for a terminal: the line form
  EXPECT_EQ(r.exit_code, 7) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  const std::string want =
      "cleanroom: error[SQL_INVALID]: syntax error at line 4, column 27, at \"GRUOP\"\n"
      "  WHERE campaign = 'spring' GRUOP BY campaign\n"
      "                            ^^^^^\n";
  EXPECT_NE(r.err.find(want), std::string::npos) << r.err;
  // A missing parenthesis is found where the parser gives up: the FROM of line 2.
  auto open = Query("acme", "SELECT campaign, COUNT(DISTINCT email\n  FROM impressions GROUP BY campaign",
                    "table");
  EXPECT_EQ(open.exit_code, 7) << open.err;
  EXPECT_NE(open.err.find("syntax error at line 2, column 3, at \"FROM\"\n"
                          "    FROM impressions GROUP BY campaign\n"
                          "    ^^^^\n"),
            std::string::npos)
      << open.err;
  EXPECT_EQ(Snapshot(P("room"), "audit.log"), before);
}

// A join that multiplies rows (each person's ~4 impressions joined with
// themselves ten times over) would hold the room for hours: it is stopped at
// the operator's time limit, refused with QUERY_LIMIT_EXCEEDED (exit 3) and
// audited, and nothing is released.
TEST_F(QueryE2e, QueriesAreStoppedAtTheOperatorsTimeAndMemoryLimits) {
  auto before = Snapshot(P("room"), "audit.log");
  size_t audit_before = Slurp(P("room/audit.log")).size();
  std::string sql = "SELECT t0.campaign, COUNT(DISTINCT t0.email) AS people FROM impressions t0";
  for (int i = 1; i <= 10; ++i) {
    sql += fmt::format(" JOIN impressions t{} ON t{}.email = t{}.email", i, i - 1, i);
  }
  sql += " GROUP BY t0.campaign";
  // `timeout 120` keeps a broken watchdog from hanging the suite (exit 124,
  // which fails the exit-code check): no timing assertion needed.
  auto r = RunShell("CLEANROOM_QUERY_TIMEOUT=1 timeout 120 " + Q(CLEANROOM_BINARY) + " " +
                    As("acme") + " --format json query --sql " + Q(sql));
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_EQ(ErrorCode(r), "QUERY_LIMIT_EXCEEDED") << r.err;
  EXPECT_NE(r.err.find("ran longer than the room allows"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_EQ(Snapshot(P("room"), "audit.log"), before);
  std::string audit = Slurp(P("room/audit.log")).substr(audit_before);
  EXPECT_NE(audit.find("\"QUERY_LIMIT_EXCEEDED\""), std::string::npos) << audit;
  EXPECT_NE(audit.find("\"query.refused\""), std::string::npos) << audit;
  // The limit is the operator's: a value that is not a number is refused.
  auto bad = RunShell("CLEANROOM_QUERY_TIMEOUT=soon " + Q(CLEANROOM_BINARY) + " " + As("acme") +
                      " query --sql " + Q("SELECT campaign, COUNT(DISTINCT email) FROM impressions GROUP BY campaign"));
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  // The memory limit is the operator's too: a query that does not fit is
  // refused the same way (nothing spills to disk), a malformed size is usage.
  const std::string simple =
      "SELECT campaign, COUNT(DISTINCT email) AS people FROM impressions GROUP BY campaign";
  auto tight = RunShell("CLEANROOM_QUERY_MEMORY=1MB " + Q(CLEANROOM_BINARY) + " " + As("acme") +
                        " query --sql " + Q(simple));
  EXPECT_EQ(tight.exit_code, 3) << tight.err;
  EXPECT_NE(tight.err.find("error[QUERY_LIMIT_EXCEEDED]"), std::string::npos) << tight.err;
  EXPECT_NE(tight.err.find("more memory"), std::string::npos) << tight.err;
  for (const char* bad_size : {"lots", "4 G", "0MB", "4GB; DROP"}) {
    auto r2 = RunShell(std::string("CLEANROOM_QUERY_MEMORY=") + Q(bad_size) + " " +
                       Q(CLEANROOM_BINARY) + " " + As("acme") + " query --sql " + Q(simple));
    EXPECT_EQ(r2.exit_code, 2) << bad_size << " " << r2.err;
  }
  EXPECT_EQ(Snapshot(P("room"), "audit.log"), before);
  // The same room answers the next query normally, also under a sane limit.
  auto ok = Query("acme", simple);
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  auto roomy = RunShell("CLEANROOM_QUERY_MEMORY=2GB " + Q(CLEANROOM_BINARY) + " " + As("acme") +
                        " query --sql " + Q(simple));
  EXPECT_EQ(roomy.exit_code, 0) << roomy.err;
}

// Receivers find the results sealed to them (their own queries or others'),
// with counts that were released and nothing more: a withheld summary stays
// null in the listing and in the audit log.
TEST_F(QueryE2e, ResultsListShowsEachReceiverWhatWasReleasedToIt) {
  auto narrow = Query("acme", "SELECT campaign, SUM(cost) AS spend FROM impressions WHERE shown_at "
                              "BETWEEN TIMESTAMP '2026-11-02 10:00:00' AND TIMESTAMP "
                              "'2026-11-02 12:00:00' GROUP BY campaign");
  ASSERT_EQ(narrow.exit_code, 0) << narrow.err;
  const std::string shared_id = Json(narrow)["result_id"];
  ASSERT_TRUE(Json(narrow)["withheld_rows"].is_null());
  auto own = Query("acme", "SELECT day, COUNT(DISTINCT email) AS buyers FROM purchases GROUP BY day");
  ASSERT_EQ(own.exit_code, 0) << own.err;
  const std::string acme_only = Json(own)["result_id"];

  auto ids = [&](const std::string& party) {
    auto r = Run(As(party) + " --format json results list");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::map<std::string, json> out;
    for (const auto& m : Json(r)) out[m["result_id"]] = m;
    return out;
  };
  auto acme = ids("acme"), newsco = ids("newsco");
  ASSERT_TRUE(acme.count(shared_id) && acme.count(acme_only));
  EXPECT_TRUE(newsco.count(shared_id));     // impressions results go to newsco too
  EXPECT_FALSE(newsco.count(acme_only));    // purchases results only to acme
  const json& m = acme[shared_id];
  EXPECT_EQ(m["requested_by"], "acme");
  EXPECT_EQ(m["datasets"], json({"impressions"}));
  EXPECT_EQ(m["released_rows"], 0);
  EXPECT_TRUE(m["withheld_rows"].is_null()) << m.dump();
  EXPECT_FALSE(m.contains("rows"));
  // The audit entry of that release says null too.
  std::istringstream audit(Slurp(P("room/audit.log")));
  bool seen = false;
  for (std::string line; std::getline(audit, line);) {
    auto e = json::parse(line);
    if (e["event"] == "query.run" && e["details"]["result_id"] == shared_id) {
      seen = true;
      EXPECT_TRUE(e["details"]["withheld_rows"].is_null()) << line;
    }
  }
  EXPECT_TRUE(seen);
  // Table and csv forms; a key of no party gets exit 5.
  auto table = Run(As("newsco") + " results list");
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find(shared_id), std::string::npos);
  EXPECT_EQ(table.out.find(acme_only), std::string::npos);
  auto csv = Run(As("acme") + " --format csv results list");
  EXPECT_EQ(csv.out.rfind("result_id,created_at,requested_by,datasets,released_rows,withheld_rows\n", 0), 0u);
  EXPECT_EQ(Run(As("outsider") + " results list").exit_code, 5);
}

TEST_F(QueryE2e, AggregatesEqualPlainDuckDbMinusSuppressedRows) {
  // Per campaign: everything clears k = 100.
  auto r = Query("acme", "SELECT campaign, COUNT(DISTINCT email) AS people, SUM(cost) AS spend, "
                         "AVG(cost) AS avg_cost FROM impressions GROUP BY campaign");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto got = Json(r);
  EXPECT_EQ(got["columns"], json({"campaign", "people", "spend", "avg_cost"}));
  int64_t withheld = -1;
  auto want = Expected("SELECT campaign, COUNT(DISTINCT email), SUM(cost), AVG(cost), "
                       "COUNT(DISTINCT email) FROM impressions GROUP BY campaign", 100, &withheld);
  ExpectSameRows(got["rows"], want);
  EXPECT_EQ(got["withheld_rows"], withheld);

  // Per campaign and week: groups straddle k, some are suppressed.
  r = Query("acme", "SELECT campaign, date_trunc('week', shown_at) AS week, COUNT(DISTINCT email) "
                    "AS people, SUM(cost) AS spend FROM impressions GROUP BY campaign, week");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  got = Json(r);
  want = Expected("SELECT campaign, CAST(date_trunc('week', shown_at) AS VARCHAR), COUNT(DISTINCT email), "
                  "SUM(cost), COUNT(DISTINCT email) FROM impressions GROUP BY ALL", 100, &withheld);
  ASSERT_GT(withheld, 0) << "the data should put some groups under k";
  ASSERT_GT(want.size(), 0u);
  for (auto& row : got["rows"]) {
    EXPECT_GE(row[2].get<int64_t>(), 100);
    row[0] = row[0].get<std::string>() + "|" + row[1].get<std::string>();
  }
  for (auto& row : want) row[0] = row[0].get<std::string>() + "|" + row[1].get<std::string>();
  ExpectSameRows(got["rows"], want);
  EXPECT_EQ(got["withheld_rows"], withheld);

  // Join with a clamped metric (amounts reach 500, bounds are [0, 300]).
  r = Query("acme", "SELECT i.campaign, COUNT(DISTINCT p.email) AS buyers, SUM(p.amount) AS revenue "
                    "FROM impressions i JOIN purchases p ON i.email = p.email GROUP BY i.campaign");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  got = Json(r);
  want = Expected("SELECT i.campaign, COUNT(DISTINCT p.email), SUM(p.amount), COUNT(DISTINCT p.email) "
                  "FROM impressions i JOIN purchases p ON i.email = p.email GROUP BY i.campaign",
                  100, &withheld);
  ASSERT_GT(want.size(), 0u);
  ExpectSameRows(got["rows"], want);

  // The template, with its parameter bound as a DATE.
  r = Run(As("acme") + " --format json run --template conversions_by_campaign --param since=2026-12-10");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  got = Json(r);
  want = Expected("SELECT i.campaign, COUNT(DISTINCT p.email), SUM(p.amount), COUNT(DISTINCT p.email) "
                  "FROM impressions i JOIN purchases p ON i.email = p.email WHERE p.day >= DATE "
                  "'2026-12-10' GROUP BY i.campaign",
                  100, &withheld);
  ExpectSameRows(got["rows"], want);
}

TEST_F(QueryE2e, ThresholdStopsTargetingOnePerson) {
  // A narrow filter on one timestamp and on one day: groups of a handful of people.
  auto r = Query("acme", "SELECT campaign, SUM(cost) AS spend FROM impressions WHERE shown_at BETWEEN "
                         "TIMESTAMP '2026-11-02 10:00:00' AND TIMESTAMP '2026-11-02 12:00:00' GROUP BY campaign");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Json(r)["rows"].empty());
  EXPECT_TRUE(Json(r)["withheld_rows"].is_null());
  // GROUP BY a near-unique dimension: nothing under k comes out.
  r = Query("acme", "SELECT shown_at, COUNT(DISTINCT email) AS people FROM impressions GROUP BY shown_at");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = Json(r);
  EXPECT_TRUE(j["rows"].empty());
  EXPECT_TRUE(j["withheld_rows"].is_number() && j["withheld_rows"].get<int64_t>() > 1000);
}

TEST_F(QueryE2e, ResultsReachOnlyTheirReceivers) {
  // Join over purchases: only acme may receive.
  auto r = Query("acme", "SELECT i.campaign, COUNT(DISTINCT p.email) AS buyers FROM impressions i "
                         "JOIN purchases p ON i.email = p.email GROUP BY i.campaign");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto joined = Json(r);
  std::string id = joined["result_id"];
  ASSERT_EQ(id.size(), 32u);
  auto files = Snapshot(P("room/results/" + id));
  EXPECT_EQ(files.size(), 2u);  // acme.sealed + meta.json
  EXPECT_TRUE(files.count("acme.sealed"));
  EXPECT_FALSE(files.count("newsco.sealed"));
  EXPECT_EQ(files["meta.json"].find(joined["rows"][0][0].get<std::string>()), std::string::npos)
      << "metadata holds no values";
  auto again = Run(As("acme") + " --format json results get --id " + id);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(Json(again), joined);
  auto denied = Run(As("newsco") + " results get --id " + id);
  EXPECT_EQ(denied.exit_code, 5);
  EXPECT_NE(denied.err.find("error[NOT_AUTHORIZED]"), std::string::npos);
  EXPECT_EQ(Run(As("analyst") + " results get --id " + id).exit_code, 5);
  EXPECT_EQ(Run(As("outsider") + " results get --id " + id).exit_code, 5);
  // newsco's key cannot open acme's copy even with the file in hand.
  std::filesystem::copy_file(P("room/results/" + id + "/acme.sealed"),
                             P("room/results/" + id + "/newsco.sealed"));
  EXPECT_EQ(Run(As("newsco") + " results get --id " + id).exit_code, 6);
  std::filesystem::remove(P("room/results/" + id + "/newsco.sealed"));

  // Impressions only: acme and newsco both receive.
  r = Query("acme", "SELECT campaign, COUNT(DISTINCT email) AS people FROM impressions GROUP BY campaign");
  ASSERT_EQ(r.exit_code, 0);
  auto imp = Json(r);
  auto got = Run(As("newsco") + " --format json results get --id " + imp["result_id"].get<std::string>());
  ASSERT_EQ(got.exit_code, 0) << got.err;
  EXPECT_EQ(Json(got), imp);
  auto csv = Run(As("newsco") + " --format csv results get --id " + imp["result_id"].get<std::string>());
  EXPECT_EQ(csv.out.rfind("campaign,people\n", 0), 0u) << csv.out;

  // analyst may query but receives nothing: it gets the id, not the rows.
  r = Query("analyst", "SELECT campaign, COUNT(DISTINCT email) AS people FROM impressions GROUP BY campaign");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto a = Json(r);
  EXPECT_FALSE(a.contains("rows"));
  EXPECT_EQ(a["receivers"], json({"acme", "newsco"}));
  EXPECT_EQ(Run(As("analyst") + " results get --id " + a["result_id"].get<std::string>()).exit_code, 5);
  auto table = Query("analyst", "SELECT campaign, COUNT(DISTINCT email) FROM impressions GROUP BY campaign", "table");
  EXPECT_EQ(table.out.find("spring"), std::string::npos) << table.out;

  // newsco lacks the query ability; an outsider is no party at all.
  auto nq = Query("newsco", "SELECT campaign, COUNT(DISTINCT email) FROM impressions GROUP BY campaign");
  EXPECT_EQ(nq.exit_code, 5);
  EXPECT_EQ(ErrorCode(nq), "NOT_AUTHORIZED") << nq.err;
  EXPECT_EQ(Query("outsider", "SELECT campaign, COUNT(DISTINCT email) FROM impressions GROUP BY campaign").exit_code, 5);

  // Unknown and malformed ids; a tampered copy.
  auto missing = Run(As("acme") + " results get --id 0123456789abcdef0123456789abcdef");
  EXPECT_EQ(missing.exit_code, 7);
  EXPECT_NE(missing.err.find("RESULT_NOT_FOUND"), std::string::npos);
  EXPECT_EQ(Run(As("acme") + " results get --id ../../room").exit_code, 7);
  std::string path = P("room/results/" + id + "/acme.sealed");
  std::string bytes = Slurp(path);
  bytes[bytes.size() - 3] ^= 1;
  Spit(path, bytes);
  EXPECT_EQ(Run(As("acme") + " results get --id " + id).exit_code, 6);

  // The audit log has each release with its counts and id, and stays intact.
  auto show = Run("--room " + Q(P("room")) + " --format json audit show");
  EXPECT_NE(show.out.find(id), std::string::npos);
  EXPECT_NE(show.out.find("released_rows"), std::string::npos);
  EXPECT_NE(show.out.find("sql_sha256"), std::string::npos);
  EXPECT_NE(show.out.find("result.get.refused"), std::string::npos);
  Must("--room " + Q(P("room")) + " audit verify");
}

TEST_F(QueryE2e, ListAndCustomRules) {
  auto r = Query("acme", "SELECT DISTINCT s.segment FROM segments s JOIN audiences a ON s.email = a.email");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = Json(r);
  json segs = json::array();
  for (const auto& row : j["rows"]) segs.push_back(row[0]);
  std::sort(segs.begin(), segs.end());
  EXPECT_EQ(segs, json({"even", "odd"}));  // 'rare' covers 5 people
  EXPECT_TRUE(j["withheld_rows"].is_null());
  // analyst owns no dataset in the join.
  EXPECT_EQ(Query("analyst", "SELECT DISTINCT s.segment FROM segments s JOIN audiences a ON s.email = a.email").exit_code, 3);

  // The custom dataset: only through its template, parameters typed.
  r = Run(As("acme") + " --format json run --template time_by_site --param exclude=gamma");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  j = Json(r);
  EXPECT_EQ(j["columns"], json({"site", "people", "avg_seconds"}));
  EXPECT_EQ(j["rows"].size(), 2u);
  for (const auto& row : j["rows"]) EXPECT_LE(row[2].get<double>(), 3600.0);  // clamped
  EXPECT_EQ(Run(As("acme") + " run --template time_by_site").exit_code, 7);
  EXPECT_EQ(Run(As("acme") + " run --template time_by_site --param exclude=a --param other=b").exit_code, 7);
  EXPECT_EQ(Run(As("acme") + " run --template conversions_by_campaign --param since=soon").exit_code, 7);
  EXPECT_EQ(Run(As("acme") + " run --template no_such_template").exit_code, 7);
  EXPECT_EQ(Run(As("newsco") + " run --template time_by_site --param exclude=a").exit_code, 5);
  EXPECT_EQ(Query("acme", "SELECT site, COUNT(DISTINCT email) FROM visits GROUP BY site").exit_code, 3);
}

TEST_F(QueryE2e, DemoQueriesRunAndPrintEachStep) {
  ASSERT_TRUE(crypto::Init());
  ASSERT_TRUE(MakeDirs(P("tls")));
  auto tls = demo::MakeTlsFiles(P("tls"));
  ASSERT_TRUE(tls) << tls.error().message;
  auto server = demo::ServeProcess::Start(
      {.binary = CLEANROOM_BINARY, .room = P("room"), .tls = *tls, .log_path = P("serve.log")});
  ASSERT_TRUE(server) << server.error().message;
  auto as = [&](const std::string& party) {
    return client::Client::Connect(
        {.url = server->url(), .tls_ca = tls->ca_cert, .key_path = P("keys/" + party + ".key")});
  };
  auto acme = as("acme");
  auto newsco = as("newsco");
  ASSERT_TRUE(acme && newsco);
  auto spec = spec::Load(P("spec.yaml"));
  ASSERT_TRUE(spec);
  ::testing::internal::CaptureStdout();
  auto st = cli::RunDemoQueries(*acme, *newsco, *spec);
  std::string out = ::testing::internal::GetCapturedStdout();
  ASSERT_TRUE(st) << st.error().ToString() << "\n" << out;
  EXPECT_TRUE(server->Stop());
  for (const char* step : {"\n[11] ", "\n[12] ", "\n[13] ", "\n[14] "}) {
    EXPECT_NE(out.find(step), std::string::npos) << out;
  }
  EXPECT_NE(out.find("QUERY_REFUSED"), std::string::npos);
  EXPECT_NE(out.find("NOT_AUTHORIZED"), std::string::npos);
  std::cout << out;
}

TEST_F(QueryE2e, OnlyTheColumnsAQueryReadsAreDecryptedAndMounted) {
  ASSERT_TRUE(crypto::Init());
  auto room = room::Room::Open(P("room"));
  ASSERT_TRUE(room);
  auto db = engine::Database::Open();
  ASSERT_TRUE(db);
  query::CheckContext ctx;
  ctx.spec = &room->spec();
  ctx.caller = "acme";
  auto plan = query::BuildPlan(*db,
                               "SELECT i.campaign, SUM(p.amount) AS revenue FROM impressions i "
                               "JOIN purchases p ON i.email = p.email GROUP BY i.campaign",
                               ctx);
  ASSERT_TRUE(plan) << plan.error().message;
  auto cols = plan->Columns();
  EXPECT_EQ(cols["impressions"], (std::set<std::string>{"email", "campaign"}));
  EXPECT_EQ(cols["purchases"], (std::set<std::string>{"email", "amount"}));
  auto files = query::MountDatasets(*room, *db, *plan);
  ASSERT_TRUE(files) << files.error().message;
  auto described = db->Query("SELECT column_name FROM (DESCRIBE impressions) ORDER BY 1");
  ASSERT_TRUE(described);
  ASSERT_EQ(described->row_count(), 2u);
  EXPECT_EQ(*described->at(0, 0), "campaign");
  EXPECT_EQ(*described->at(1, 0), "email");
  // Columns the plan does not read were never decrypted, and are not there.
  EXPECT_FALSE(db->Query("SELECT cost FROM impressions", ErrorCode::INTERNAL, false));
  EXPECT_FALSE(db->Query("SELECT shown_at FROM impressions", ErrorCode::INTERNAL, false));
  // What is mounted is the real data.
  auto n = db->Query("SELECT count(*), count(DISTINCT email) > 100 FROM impressions");
  ASSERT_TRUE(n);
  EXPECT_EQ(*n->at(0, 0), "12000");
  EXPECT_EQ(*n->at(0, 1), "true");

  // One dataset, the privacy unit column never named by the analyst (the
  // threshold still needs it), a filter on a column that is not an output.
  auto db2 = engine::Database::Open();
  ASSERT_TRUE(db2);
  auto single = query::BuildPlan(*db2,
                                 "SELECT campaign, SUM(cost) AS spend FROM impressions "
                                 "WHERE shown_at >= TIMESTAMP '2000-01-01' GROUP BY campaign",
                                 ctx);
  ASSERT_TRUE(single) << single.error().message;
  EXPECT_EQ(single->Columns()["impressions"],
            (std::set<std::string>{"email", "campaign", "shown_at", "cost"}));
  single = query::BuildPlan(*db2, "SELECT campaign, SUM(cost) AS spend FROM impressions GROUP BY campaign",
                            ctx);
  ASSERT_TRUE(single);
  EXPECT_EQ(single->Columns()["impressions"], (std::set<std::string>{"email", "campaign", "cost"}));
  query::ExecStats stats;
  auto rs = query::Execute(*room, *db2, *single, &stats);
  ASSERT_TRUE(rs) << rs.error().message;
  EXPECT_GT(rs->rows.size(), 0u);
  EXPECT_FALSE(db2->Query("SELECT shown_at FROM impressions", ErrorCode::INTERNAL, false));
}


// A room over a spec whose privacy units are customer_id and member_id, with
// no data: the checker's hints and "unknown" refusals name this spec's
// datasets and columns (names only), and the room is left as it was.
TEST(QueryE2eOtherSpec, RefusalsNameThisSpecsDatasetsAndColumns) {
  TempDir dir;
  auto p = [&](const std::string& rel) { return dir / rel; };
  auto run = [&](const std::string& args) { return RunShell(Q(CLEANROOM_BINARY) + " " + args); };
  std::string sigs;
  for (const char* party : {"acme", "newsco", "analyst"}) {
    ASSERT_EQ(run(std::string("keygen --name ") + party + " --out " + Q(p("keys"))).exit_code, 0);
  }
  Spit(p("spec.yaml"), kCustomerSpec);
  auto init = run("room init --region eu --room " + Q(p("room")) + " --spec " + Q(p("spec.yaml")));
  ASSERT_EQ(init.exit_code, 0) << init.err;
  for (const char* party : {"acme", "newsco", "analyst"}) {
    auto sign = run("spec sign --spec " + Q(p("spec.yaml")) + " --key " + Q(p(std::string("keys/") + party + ".key")));
    ASSERT_EQ(sign.exit_code, 0) << sign.err;
    sigs += " " + Q(p(std::string("spec.yaml.") + party + ".sig"));
  }
  auto act = run("room activate --room " + Q(p("room")) + " --sig" + sigs);
  ASSERT_EQ(act.exit_code, 0) << act.err;
  auto before = Snapshot(p("room"), "audit.log");
  auto query = [&](const std::string& sql) {
    return run("--room " + Q(p("room")) + " --key " + Q(p("keys/acme.key")) + " query --sql " + Q(sql));
  };
  struct Want {
    const char* sql;
    const char* reason;
  };
  for (const Want& w : {
           Want{"SELECT store, COUNT(*) FROM orders GROUP BY store", "e.g. COUNT(DISTINCT customer_id)"},
           Want{"SELECT o.store, COUNT(*) FROM orders o JOIN members m ON o.customer_id = m.member_id "
                "GROUP BY o.store",
                "e.g. COUNT(DISTINCT o.customer_id)"},
           Want{"SELECT tier, COUNT(*) FROM members GROUP BY tier", "e.g. COUNT(DISTINCT member_id)"},
           Want{"SELECT store, SUM(total) FROM impressions GROUP BY store",
                "unknown dataset 'impressions' (the spec's datasets: orders, members)"},
           Want{"SELECT email, COUNT(DISTINCT customer_id) FROM orders GROUP BY email",
                "unknown column 'email' (columns in scope: orders: customer_id, store, total)"},
       }) {
    auto r = query(w.sql);
    EXPECT_EQ(r.exit_code, 3) << w.sql << "\n" << r.err;
    EXPECT_NE(r.err.find("cleanroom: error[QUERY_REFUSED]"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(w.reason), std::string::npos) << w.sql << "\nwant: " << w.reason << "\ngot: " << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
  auto star = query("SELECT store, COUNT(*) FROM orders GROUP BY store");
  EXPECT_EQ(star.err.find("email"), std::string::npos) << star.err;
  EXPECT_EQ(Snapshot(p("room"), "audit.log"), before);
}

}  // namespace
}  // namespace cr::testing
