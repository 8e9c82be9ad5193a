// Governance over time through the binary (issue 15, capabilities 1 and 2):
// difference checks refuse the two-query differencing attack on a
// threshold-only room, and usage budgets (rule max_queries) refuse a query
// past its count with nothing charged. Every refusal leaves the room as it was.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "client/tls_fixture.h"
#include "common/files.h"
#include "demo/serve_process.h"
#include "e2e/e2e_fixture.h"

namespace cr::testing {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

const std::string kThreshold = "  min_distinct_units: 50\n";

// The campaign spec with `privacy_extra` after the room's threshold and
// `rule_extra` in the impressions rule.
std::string GovSpec(const std::string& privacy_extra, const std::string& rule_extra = "") {
  std::string text = SpecText();
  text.insert(text.find(kThreshold) + kThreshold.size(), privacy_extra);
  const std::string receivers = "      receivers: [acme, newsco]\n";
  text.insert(text.find(receivers) + receivers.size(), rule_extra);
  return text;
}

class GovernanceE2e : public E2eTest {
 protected:
  // The data of the DP issue's differencing attack: 300 people saw spring
  // and spent 10 each; one target saw summer and spent 77.
  void SetUpAttack(const std::string& spec_text, int summer_people = 1) {
    std::string imp = "email,campaign,shown_at,cost\n", pur = "email,amount,day\n";
    for (int i = 0; i < 300; ++i) {
      std::string e = "p" + std::to_string(i) + "@example.com";
      imp += e + ",spring,2026-11-01 10:00:00,1.0\n";
      pur += e + ",10.00,2026-11-02\n";
    }
    for (int i = 0; i < summer_people; ++i) {
      std::string e = "target" + std::to_string(i) + "@example.com";
      imp += e + ",summer,2026-11-01 10:00:00,1.0\n";
      pur += e + ",77.00,2026-11-02\n";
    }
    Spit(P("imp.csv"), imp);
    Spit(P("pur.csv"), pur);
    SetUpRoom(true, spec_text);
    ASSERT_EQ(Prepare("impressions", P("imp.csv"), "keys/newsco.key", "imp.crpkg").exit_code, 0);
    ASSERT_EQ(Prepare("purchases", P("pur.csv"), "keys/acme.key", "pur.crpkg").exit_code, 0);
    ASSERT_EQ(Ingest(P("imp.crpkg")).exit_code, 0);
    ASSERT_EQ(Ingest(P("pur.crpkg")).exit_code, 0);
  }
  RunResult Query(const std::string& sql, const std::string& env = "") {
    return Run("--room " + Q(P("room")) + " --key " + Q(P("keys/acme.key")) +
                   " --format json query --sql " + Q(sql),
               env);
  }
  json QueryJson(const std::string& sql, const std::string& env = "") {
    auto r = Query(sql, env);
    EXPECT_EQ(r.exit_code, 0) << sql << "\n" << r.err;
    auto j = json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    return j;
  }
  std::map<std::string, std::string> RoomFiles() { return Snapshot(P("room"), "audit.log"); }
  std::string UnitsFile() {
    for (auto& e : fs::directory_iterator(P("room/unitsets"))) {
      if (e.path().extension() == ".units") return e.path().string();
    }
    return "";
  }
  json Budget(const std::string& env = "") {
    auto r = Run("--room " + Q(P("room")) + " --format json budget", env);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out, nullptr, false);
  }

  const std::string both_ =
      "SELECT SUM(p.amount) AS s FROM impressions i JOIN purchases p ON i.email = p.email "
      "WHERE i.campaign IN ('spring', 'summer')";
  const std::string spring_ =
      "SELECT SUM(p.amount) AS s FROM impressions i JOIN purchases p ON i.email = p.email "
      "WHERE i.campaign = 'spring'";
};

// ----- Difference checks ---------------------------------------------------------------

TEST_F(GovernanceE2e, TheTwoQueryDifferencingAttackIsWithheldByDefault) {
  SetUpAttack(SpecText());
  json a = QueryJson(both_);
  ASSERT_EQ(a["rows"].size(), 1u);
  EXPECT_EQ(a["rows"][0][0], 3077);
  // Spring alone covers 300 of the same 301 people: one unit apart, below
  // the threshold of 100. Withheld, counted in the summary, never released.
  json b = QueryJson(spring_);
  EXPECT_TRUE(b["rows"].empty()) << b.dump();
  EXPECT_EQ(b["withheld_rows"], 1);
  // The audit log says why, without values.
  std::string log = Slurp(P("room/audit.log"));
  EXPECT_NE(log.find("\"difference_withheld\":1"), std::string::npos);
  EXPECT_EQ(log.find("3000"), std::string::npos);
  // Asked the other way round in a fresh room, the second query is the one withheld.
}

// The server keeps stored results' unit sets decoded between queries (its
// warm room, diffcheck::SetCache): the pair is withheld there as in the
// room's files, whether the first answer was stored by the server (checked
// from memory) or by a local command before it started (read from its file).
TEST_F(GovernanceE2e, TheWarmServerWithholdsTheDifferencingPairAsTheRoomDoes) {
  SetUpAttack(SpecText());
  json local = QueryJson(spring_);  // stored before the server starts
  ASSERT_EQ(local["rows"].size(), 1u);
  ASSERT_TRUE(MakeDirs(P("tls")));
  const TlsFiles tls = MakeTlsFiles(P("tls"));
  auto server = demo::ServeProcess::Start({.binary = Bin(),
                                           .room = P("room"),
                                           .tls = {tls.ca_cert, tls.server_cert, tls.server_key},
                                           .log_path = P("serve.log")});
  ASSERT_TRUE(server) << server.error().message << "\n" << Slurp(P("serve.log"));
  auto remote = [&](const std::string& sql) {
    auto r = Run("--server " + server->url() + " --tls-ca " + Q(tls.ca_cert) + " --key " +
                 Q(P("keys/acme.key")) + " --format json query --sql " + Q(sql));
    EXPECT_EQ(r.exit_code, 0) << sql << "\n" << r.err;
    return json::parse(r.out, nullptr, false);
  };
  // Against the local answer, read from its file: one unit apart, withheld.
  json a = remote(both_);
  EXPECT_TRUE(a["rows"].empty()) << a.dump();
  EXPECT_EQ(a["withheld_rows"], 1);
  // The same set again is released. Over impressions alone, the server
  // stores the first of a pair and withholds the second from memory.
  EXPECT_EQ(remote(spring_)["rows"], local["rows"]);
  const std::string seen_both =
      "SELECT COUNT(DISTINCT email) AS people FROM impressions WHERE campaign IN ('spring', "
      "'summer')";
  const std::string seen_spring =
      "SELECT COUNT(DISTINCT email) AS people FROM impressions WHERE campaign = 'spring'";
  json first = remote(seen_both);
  ASSERT_EQ(first["rows"].size(), 1u) << first.dump();
  EXPECT_EQ(first["rows"][0][0], 301);
  json second = remote(seen_spring);
  EXPECT_TRUE(second["rows"].empty()) << second.dump();
  EXPECT_EQ(second["withheld_rows"], 1);
  ASSERT_TRUE(server->Stop());
  // The room's files agree with what the server decided from memory.
  json again = QueryJson(seen_spring);
  EXPECT_TRUE(again["rows"].empty()) << again.dump();
}

// Rollback of the difference checks' memory: an older unitsets/index.json
// put back (validly sealed) forgets the earlier answer, and the second of
// the pair would be released. The audit log records the index's generation
// with every such query: the room is refused with exit 6, nothing released,
// no file changed; the same for the store removed whole.
TEST_F(GovernanceE2e, AnOlderUnitSetIndexPutBackIsExit6AndReleasesNothing) {
  SetUpAttack(SpecText());
  ASSERT_EQ(QueryJson("SELECT COUNT(DISTINCT email) AS people FROM impressions")["rows"].size(),
            1u);
  const std::string index = P("room/unitsets/index.json");
  const std::string older = Slurp(index);
  ASSERT_EQ(QueryJson(both_)["rows"][0][0], 3077);
  const std::string current = Slurp(index);
  ASSERT_NE(current, older);
  Spit(index, older);
  const auto before = Snapshot(P("room"));
  auto r = Query(spring_);
  EXPECT_EQ(r.exit_code, 6) << r.out << r.err;
  EXPECT_NE(r.err.find("TAMPERED"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("3000"), std::string::npos) << r.out;
  EXPECT_EQ(Snapshot(P("room")), before);
  fs::rename(P("room/unitsets"), P("unitsets-aside"));
  r = Query(spring_);
  EXPECT_EQ(r.exit_code, 6) << r.out << r.err;
  EXPECT_NE(r.err.find("TAMPERED"), std::string::npos) << r.err;
  fs::rename(P("unitsets-aside"), P("room/unitsets"));
  Spit(index, current);
  json b = QueryJson(spring_);
  EXPECT_TRUE(b["rows"].empty()) << b.dump();
  EXPECT_EQ(b["withheld_rows"], 1);
  Ok("audit verify --room " + Q(P("room")));
}

TEST_F(GovernanceE2e, OrderDoesNotMatterTheSecondOfTheTwoIsWithheld) {
  SetUpAttack(SpecText());
  json b = QueryJson(spring_);
  ASSERT_EQ(b["rows"].size(), 1u);
  json a = QueryJson(both_);
  EXPECT_TRUE(a["rows"].empty()) << a.dump();
  EXPECT_EQ(a["withheld_rows"], 1);
}

TEST_F(GovernanceE2e, WithChecksOffTheDifferenceIsExact) {
  // The control: the spec key turns the checks off and the attack works.
  SetUpAttack(GovSpec("  difference_checks: false\n"));
  json a = QueryJson(both_), b = QueryJson(spring_);
  ASSERT_EQ(a["rows"].size(), 1u);
  ASSERT_EQ(b["rows"].size(), 1u);
  EXPECT_NEAR(a["rows"][0][0].get<double>() - b["rows"][0][0].get<double>(), 77, 1e-6);
  EXPECT_FALSE(fs::exists(P("room/unitsets")));
}

TEST_F(GovernanceE2e, TheSameSetAgainOrOneFarApartIsReleased) {
  // 120 summer people: spring alone is 120 units away from both (>= 100).
  SetUpAttack(SpecText(), 120);
  json a = QueryJson(both_);
  ASSERT_EQ(a["rows"].size(), 1u);
  EXPECT_EQ(QueryJson(both_)["rows"], a["rows"]);  // the same units: nothing new is learnt
  json b = QueryJson(spring_);
  ASSERT_EQ(b["rows"].size(), 1u);
  EXPECT_EQ(b["rows"][0][0], 3000);
}

TEST_F(GovernanceE2e, GroupedRowsAreCheckedOneByOne) {
  SetUpAttack(SpecText());
  // By campaign the summer row (1 person) is under the threshold anyway;
  // the spring row's 300 units are 1 away from the earlier 301-unit row.
  json a = QueryJson(both_);
  ASSERT_EQ(a["rows"].size(), 1u);
  json g = QueryJson(
      "SELECT i.campaign, SUM(p.amount) AS s FROM impressions i JOIN purchases p ON "
      "i.email = p.email GROUP BY i.campaign");
  EXPECT_TRUE(g["rows"].empty()) << g.dump();
  EXPECT_EQ(g["withheld_rows"], 2);
}

TEST_F(GovernanceE2e, ATamperedUnitSetFileIsRefusedAndReleasesNothing) {
  SetUpAttack(SpecText());
  ASSERT_EQ(QueryJson(both_)["rows"].size(), 1u);
  std::string path = UnitsFile();
  ASSERT_FALSE(path.empty());
  std::string bytes = Slurp(path);
  bytes[bytes.size() / 2] ^= 1;
  Spit(path, bytes);
  auto before = RoomFiles();
  auto r = Query(spring_);
  ExpectRefused(r, 6, "TAMPERED");
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_EQ(RoomFiles(), before);  // no result stored, nothing recorded
}

TEST_F(GovernanceE2e, ATamperedOrRemovedIndexIsRefused) {
  SetUpAttack(SpecText());
  ASSERT_EQ(QueryJson(both_)["rows"].size(), 1u);
  std::string index = P("room/unitsets/index.json");
  std::string text = Slurp(index);
  std::string changed = text;
  changed[changed.find("\"count\":") + 8] = '9';
  Spit(index, changed);
  ExpectRefused(Query(spring_), 6, "TAMPERED");
  fs::remove(index);
  ExpectRefused(Query(spring_), 6, "TAMPERED");
  Spit(index, text);
  json b = QueryJson(spring_);
  EXPECT_TRUE(b["rows"].empty());
}

TEST_F(GovernanceE2e, DisposingADatasetRemovesTheUnitSetsOverIt) {
  SetUpAttack(SpecText());
  ASSERT_EQ(QueryJson(both_)["rows"].size(), 1u);
  ASSERT_FALSE(UnitsFile().empty());
  auto r = Run("--room " + Q(P("room")) + " dispose --dataset purchases");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(UnitsFile().empty());
  EXPECT_EQ(Slurp(P("room/unitsets/index.json")).find("purchases"), std::string::npos);
}

// Two processes ask the two halves of the attack at the same moment: the
// store's lock makes one check against the other's rows, so exactly one row
// is released between them.
TEST_F(GovernanceE2e, ConcurrentQueriesCannotBothPass) {
  SetUpAttack(SpecText());
  // Each round on a copy of the room as it was before any query (removing
  // the store alone is refused as a rollback: its generation is in the log).
  fs::copy(P("room"), P("room-fresh"), fs::copy_options::recursive);
  for (int round = 0; round < 3; ++round) {
    if (round > 0) {
      fs::remove_all(P("room"));
      fs::copy(P("room-fresh"), P("room"), fs::copy_options::recursive);
    }
    std::string script;
    const std::string sqls[] = {both_, spring_};
    for (int i = 0; i < 2; ++i) {
      script += "(" + Q(Bin()) + " --room " + Q(P("room")) + " --key " + Q(P("keys/acme.key")) +
                " --format json query --sql " + Q(sqls[i]) + " > " +
                Q(P("out" + std::to_string(i))) + " 2>&1) & ";
    }
    script += "wait";
    RunShell(script);
    size_t released = 0;
    for (int i = 0; i < 2; ++i) {
      json j = json::parse(Slurp(P("out" + std::to_string(i))), nullptr, false);
      ASSERT_FALSE(j.is_discarded()) << Slurp(P("out" + std::to_string(i)));
      released += j["rows"].size();
    }
    EXPECT_EQ(released, 1u) << "round " << round;
  }
}

// ----- Usage budgets ------------------------------------------------------------------

const char* kReach =
    "SELECT campaign, COUNT(DISTINCT email) AS people FROM impressions GROUP BY campaign";

TEST_F(GovernanceE2e, AQueryPastItsUsageBudgetIsRefusedAndChargesNothing) {
  SetUpAttack(GovSpec("", "      max_queries: {count: 2, per: day}\n"), 120);
  const std::string env = "CLEANROOM_NOW=1795000000";
  EXPECT_EQ(QueryJson(kReach, env)["rows"].size(), 2u);
  EXPECT_EQ(QueryJson(both_, env)["rows"].size(), 1u);
  json b = Budget(env);
  ASSERT_EQ(b["usage"].size(), 1u) << b.dump();
  EXPECT_EQ(b["usage"][0]["dataset"], "impressions");
  EXPECT_EQ(b["usage"][0]["used"], 2);
  EXPECT_EQ(b["usage"][0]["left"], 0);
  auto before = RoomFiles();
  auto r = Query(kReach, env);
  ExpectRefused(r, 4, "USAGE_EXHAUSTED");
  EXPECT_TRUE(r.out.empty());
  EXPECT_EQ(RoomFiles(), before);  // nothing charged, stored or counted
  EXPECT_EQ(Budget(env)["usage"][0]["used"], 2);
  EXPECT_NE(Slurp(P("room/audit.log")).find("USAGE_EXHAUSTED"), std::string::npos);
  // A query over purchases alone is not limited.
  EXPECT_EQ(Query("SELECT day, SUM(amount) AS s FROM purchases GROUP BY day", env).exit_code, 0);
  // The next day the window starts again.
  EXPECT_EQ(QueryJson(kReach, "CLEANROOM_NOW=1795086400")["rows"].size(), 2u);
  EXPECT_EQ(Budget("CLEANROOM_NOW=1795086400")["usage"][0]["used"], 1);
}

TEST_F(GovernanceE2e, AQueryTheCheckerRefusesDoesNotUseTheBudget) {
  SetUpAttack(GovSpec("", "      max_queries: {count: 1, per: lifetime}\n"), 120);
  // Releases a join key: refused by the checker, before any budget is used.
  ExpectRefused(Query("SELECT email FROM impressions"), 3, "QUERY_REFUSED");
  EXPECT_EQ(Budget()["usage"][0]["used"], 0);
  EXPECT_EQ(QueryJson(kReach)["rows"].size(), 2u);
  EXPECT_EQ(Budget()["usage"][0]["used"], 1);
  ExpectRefused(Query(kReach), 4, "USAGE_EXHAUSTED");
  auto table = Run("--room " + Q(P("room")) + " budget");
  EXPECT_NE(table.out.find("impressions"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("lifetime"), std::string::npos) << table.out;
}

TEST_F(GovernanceE2e, ARemovedOrCutUsageLogIsTampered) {
  SetUpAttack(GovSpec("", "      max_queries: {count: 2, per: month}\n"), 120);
  ASSERT_EQ(QueryJson(kReach)["rows"].size(), 2u);
  std::string log = Slurp(P("room/usage.log"));
  fs::remove(P("room/usage.log"));
  ExpectRefused(Query(kReach), 6, "TAMPERED");
  Spit(P("room/usage.log"), log);
  EXPECT_EQ(Query(kReach).exit_code, 0);
}

TEST_F(GovernanceE2e, ARotatedRoomKeyCarriesTheUnitSetsAndTheUsageCounts) {
  // Rotating the room key must not be a way to wipe the difference checks'
  // memory or the query counts: both move to the new key.
  SetUpAttack(GovSpec("", "      max_queries: {count: 2, per: lifetime}\n"));
  ASSERT_EQ(QueryJson(both_)["rows"].size(), 1u);
  EXPECT_EQ(Budget()["usage"][0]["used"], 1);
  json rotated = json::parse(Ok("--format json room rotate-key --room " + Q(P("room"))).out);
  EXPECT_NE(rotated["fingerprint"], rotated["previous_fingerprint"]);
  std::string log = Slurp(P("room/audit.log"));
  EXPECT_NE(log.find("\"unit_sets_rekeyed\":1"), std::string::npos);
  EXPECT_EQ(Budget()["usage"][0]["used"], 1);
  // The differencing pair across the rotation: the second is still withheld.
  json b = QueryJson(spring_);
  EXPECT_TRUE(b["rows"].empty()) << b.dump();
  EXPECT_EQ(b["withheld_rows"], 1);
  EXPECT_EQ(Budget()["usage"][0]["used"], 2);
  ExpectRefused(Query(kReach), 4, "USAGE_EXHAUSTED");
  Ok("audit verify --room " + Q(P("room")));
}

TEST_F(GovernanceE2e, ABadUsageWindowIsASpecError) {
  Ok("keygen --name acme --out " + Q(P("keys")));
  Ok("keygen --name newsco --out " + Q(P("keys")));
  Spit(P("spec.yaml"), GovSpec("", "      max_queries: {count: 2, per: fortnight}\n"));
  auto r = Run("spec check --spec " + Q(P("spec.yaml")));
  ExpectRefused(r, 7, "SPEC_INVALID");
  EXPECT_NE(r.err.find("max_queries.per"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace cr::testing
