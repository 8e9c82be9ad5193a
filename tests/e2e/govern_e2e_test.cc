// Governance over time, through the binary: residency (room init --region,
// activation refused elsewhere, result_regions withholding a receiver's
// result) and membership changes (room activate --spec NEW as version N+1: a
// removed party and a replaced key refused locally and over the real server,
// old packages refused, changed datasets crypto-shredded, the sealed history
// file refused when tampered with, cut, deleted or rolled back).
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "client/tls_fixture.h"
#include "demo/serve_process.h"
#include "e2e/e2e_fixture.h"

namespace cr::testing {
namespace {

using nlohmann::json;

// Three parties, two regions. impressions releases results only to eu
// receivers; purchases only to us ones (and its only receiver is acme, in eu).
// `v` changes the description (a new version has new bytes); the other
// arguments are what a later version changes.
struct SpecOptions {
  std::string description = "Governed measurement v1";
  bool with_agency = true;
  std::string purchases_bounds = "[0, 500]";
  int impressions_threshold = 100;
  std::string newsco_key = "keys/newsco.pub";
  std::string region = "eu";
};

std::string GovernSpec(const SpecOptions& o) {
  std::string agency =
      o.with_agency
          ? "  agency: {public_key: keys/agency.pub, abilities: [query, receive_results], "
            "region: eu}\n"
          : "";
  std::string receivers = o.with_agency ? "[acme, newsco, agency]" : "[acme, newsco]";
  return "collaboration: acme-newsco-govern\n"
         "description: " +
         o.description +
         "\n"
         "region: " +
         o.region +
         "\n"
         "parties:\n"
         "  acme:   {public_key: keys/acme.pub, abilities: [contribute, query, receive_results], "
         "region: eu}\n"
         "  newsco: {public_key: " +
         o.newsco_key +
         ", abilities: [contribute, receive_results], "
         "region: us}\n" +
         agency +
         "privacy: {unit: person, min_distinct_units: 50}\n"
         "datasets:\n"
         "  impressions:\n"
         "    owner: newsco\n"
         "    privacy_unit_column: email\n"
         "    columns:\n"
         "      email:    {type: string, role: join_key, normalize: email}\n"
         "      campaign: {type: string, role: dimension}\n"
         "      shown_at: {type: timestamp, role: dimension}\n"
         "      cost:     {type: double, role: metric, bounds: [0, 5]}\n"
         "    rule:\n"
         "      kind: aggregation\n"
         "      aggregates: {cost: [sum, avg], email: [count_distinct]}\n"
         "      min_distinct_units: " +
         std::to_string(o.impressions_threshold) +
         "\n"
         "      receivers: " +
         receivers +
         "\n"
         "      result_regions: [eu]\n"
         "  purchases:\n"
         "    owner: acme\n"
         "    privacy_unit_column: email\n"
         "    columns:\n"
         "      email:  {type: string, role: join_key, normalize: email}\n"
         "      amount: {type: double, role: metric, bounds: " +
         o.purchases_bounds +
         "}\n"
         "      day:    {type: date, role: dimension}\n"
         "    rule: {kind: aggregation, aggregates: {amount: [sum, count], email: "
         "[count_distinct]}, "
         "receivers: [acme], result_regions: [us]}\n";
}

constexpr char kImpressionsSql[] =
    "SELECT campaign, COUNT(DISTINCT email) AS people FROM impressions GROUP BY campaign";

class GovernE2e : public E2eTest {
 protected:
  void SetUp() override {
    for (const char* name : {"acme", "newsco", "agency"}) {
      Ok(std::string("keygen --name ") + name + " --out " + Q(P("keys")));
    }
    Ok("secret new --out " + Q(P("shared.secret")));
    Generate(3000, 600);
  }

  // Writes FILE, has `signers` sign it, and returns the --sig arguments.
  std::string SignedSpec(const std::string& file, const SpecOptions& o,
                         const std::vector<std::string>& signers) {
    Spit(P(file), GovernSpec(o));
    std::string sigs;
    for (const auto& s : signers) {
      Ok("spec sign --spec " + Q(P(file)) + " --key " + Q(P("keys/" + s + ".key")));
      sigs += " " + Q(P(file + "." + s.substr(0, s.find('-')) + ".sig"));
    }
    return sigs;
  }

  // Version 1, active, with both datasets ingested.
  void SetUpVersion1() {
    const std::string sigs = SignedSpec("v1.yaml", {}, {"acme", "newsco", "agency"});
    Ok("room init --region eu --room " + Q(P("room")) + " --spec " + Q(P("v1.yaml")));
    Ok("room activate --room " + Q(P("room")) + " --sig" + sigs);
    ASSERT_EQ(
        Prepare("impressions", P("impressions.csv"), "keys/newsco.key", "imp1.crpkg", "v1.yaml")
            .exit_code,
        0);
    ASSERT_EQ(Prepare("purchases", P("purchases.csv"), "keys/acme.key", "pur1.crpkg", "v1.yaml")
                  .exit_code,
              0);
    Ok("--room " + Q(P("room")) + " ingest " + Q(P("imp1.crpkg")));
    Ok("--room " + Q(P("room")) + " ingest " + Q(P("pur1.crpkg")));
  }

  // Version 2: agency removed, purchases' bounds changed (its data must be
  // contributed again), impressions' threshold tightened (its data stays).
  json ActivateVersion2() {
    SpecOptions v2;
    v2.description = "Governed measurement v2";
    v2.with_agency = false;
    v2.purchases_bounds = "[0, 1000]";
    v2.impressions_threshold = 150;
    const std::string sigs = SignedSpec("v2.yaml", v2, {"acme", "newsco"});
    auto r = Ok("--format json room activate --room " + Q(P("room")) + " --spec " +
                Q(P("v2.yaml")) + " --sig" + sigs);
    return json::parse(r.out);
  }

  RunResult QueryAs(const std::string& party, const std::string& sql = kImpressionsSql) {
    return Run("--format json query --room " + Q(P("room")) + " --key " +
               Q(P("keys/" + party + ".key")) + " --sql " + Q(sql));
  }

  json Status() { return json::parse(Ok("--format json status --room " + Q(P("room"))).out); }
  json AuditEvents() {
    return json::parse(Ok("--format json audit show --room " + Q(P("room"))).out);
  }
  json LastEvent(const std::string& event) {
    json last;
    for (const auto& e : AuditEvents()) {
      if (e.value("event", "") == event) last = e;
    }
    return last;
  }
};

TEST_F(GovernE2e, ARoomInAnotherRegionOrWithoutOneIsRefusedActivation) {
  const std::string sigs = SignedSpec("v1.yaml", {}, {"acme", "newsco", "agency"});
  // The spec keeps data in eu: a room that runs in us, or says nowhere, is refused.
  Ok("room init --region us --room " + Q(P("us")) + " --spec " + Q(P("v1.yaml")));
  Ok("room init --room " + Q(P("nowhere")) + " --spec " + Q(P("v1.yaml")));
  for (const char* room : {"us", "nowhere"}) {
    const auto before = Snapshot(P(room));
    auto r = Run("room activate --room " + Q(P(room)) + " --sig" + sigs);
    ExpectRefused(r, 3, "REGION_MISMATCH");
    EXPECT_NE(r.err.find("region 'eu'"), std::string::npos) << r.err;
    // Nothing changed but the audit record of the refusal.
    auto after = Snapshot(P(room));
    for (const auto& [rel, bytes] : before) {
      if (rel != "audit.log") EXPECT_EQ(after[rel], bytes) << room << "/" << rel;
    }
    json status = json::parse(Ok("--format json status --room " + Q(P(room))).out);
    EXPECT_FALSE(status["active"].get<bool>());
    EXPECT_EQ(status["version"], 0);
  }
  auto refused = json::parse(Ok("--format json audit show --room " + Q(P("us"))).out);
  EXPECT_NE(refused.dump().find("room.activate.refused"), std::string::npos);
  // A malformed region is a usage error, and no room is made.
  ExpectRefused(
      Run("room init --region EU_west --room " + Q(P("bad")) + " --spec " + Q(P("v1.yaml"))), 2,
      "USAGE");
  EXPECT_FALSE(std::filesystem::exists(P("bad")));
  // The room in the spec's region activates, and status shows both regions.
  Ok("room init --region eu --room " + Q(P("room")) + " --spec " + Q(P("v1.yaml")));
  Ok("room activate --room " + Q(P("room")) + " --sig" + sigs);
  json s = Status();
  EXPECT_EQ(s["region"], "eu");
  EXPECT_EQ(s["room_region"], "eu");
  EXPECT_EQ(s["version"], 1);
  EXPECT_EQ(s["parties"][1]["region"], "us");
  auto table = Ok("status --room " + Q(P("room"))).out;
  EXPECT_NE(table.find("region         eu (the room runs in eu)"), std::string::npos) << table;
}

TEST_F(GovernE2e, ResultRegionsWithholdAReceiversResultWithTheReason) {
  SetUpVersion1();
  auto r = QueryAs("acme");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json out = json::parse(r.out);
  const std::string id = out["result_id"];
  // newsco (us) is a receiver by the rule, and outside impressions' result_regions.
  ASSERT_EQ(out["withheld_receivers"].size(), 1u) << r.out;
  EXPECT_EQ(out["withheld_receivers"][0]["party"], "newsco");
  EXPECT_NE(out["withheld_receivers"][0]["reason"].get<std::string>().find("region us"),
            std::string::npos);
  // Sealed to acme and agency only: newsco has no copy.
  auto got = Run("results get --room " + Q(P("room")) + " --key " + Q(P("keys/newsco.key")) +
                 " --id " + id);
  EXPECT_EQ(got.exit_code, 5) << got.err;
  Ok("results get --room " + Q(P("room")) + " --key " + Q(P("keys/agency.key")) + " --id " + id);
  EXPECT_FALSE(std::filesystem::exists(P("room/results/" + id + "/newsco.sealed")));
  EXPECT_TRUE(std::filesystem::exists(P("room/results/" + id + "/agency.sealed")));
  // The audit record names who was withheld and why.
  json run = LastEvent("query.run");
  ASSERT_TRUE(run.is_object());
  EXPECT_EQ(run["details"]["receivers"], json::array({"acme", "agency"}));
  EXPECT_EQ(run["details"]["withheld_receivers"][0]["party"], "newsco");
  // The table output says it too.
  auto table = Run("query --room " + Q(P("room")) + " --key " + Q(P("keys/acme.key")) + " --sql " +
                   Q(kImpressionsSql));
  EXPECT_NE(table.out.find("not sealed to newsco: party newsco is in region us"), std::string::npos)
      << table.out;
  // purchases releases only to us receivers, and its only receiver is in eu:
  // nothing runs.
  auto none = QueryAs("acme", "SELECT day, SUM(amount) AS revenue FROM purchases GROUP BY day");
  ExpectRefused(none, 3, "REGION_REFUSED");
  EXPECT_EQ(LastEvent("query.refused")["details"]["code"], "REGION_REFUSED");
}

TEST_F(GovernE2e, ANewVersionRemovesAPartyKeepsUnchangedDataAndRefusesOldPackages) {
  SetUpVersion1();
  // A package for v1, prepared before the change and never ingested.
  ASSERT_EQ(
      Prepare("purchases", P("purchases.csv"), "keys/acme.key", "pur1b.crpkg", "v1.yaml").exit_code,
      0);
  ASSERT_EQ(QueryAs("agency").exit_code, 0);
  json change = ActivateVersion2();
  EXPECT_EQ(change["version"], 2);
  EXPECT_EQ(change["parties_removed"], json::array({"agency"}));
  EXPECT_EQ(change["datasets_kept"], json::array({"impressions"}));
  EXPECT_EQ(change["datasets_disposed"], json::array({"purchases"}));

  // The removed party is refused at once, with exit 5.
  ExpectRefused(QueryAs("agency"), 5, "NOT_AUTHORIZED");
  ExpectRefused(Run("results list --room " + Q(P("room")) + " --key " + Q(P("keys/agency.key"))), 5,
                "NOT_AUTHORIZED");
  // Packages prepared for the old spec hash are refused.
  ExpectRefused(Run("--room " + Q(P("room")) + " ingest " + Q(P("pur1b.crpkg"))), 3,
                "SPEC_MISMATCH");
  // impressions stayed (under the tightened rule); purchases was crypto-shredded.
  json ds = json::parse(Ok("--format json datasets --room " + Q(P("room"))).out);
  EXPECT_EQ(ds["datasets"][0]["state"], "stored");
  EXPECT_EQ(ds["datasets"][1]["state"], "disposed");
  json dispose = LastEvent("dataset.dispose");
  EXPECT_EQ(dispose["details"]["dataset"], "purchases");
  EXPECT_EQ(dispose["details"]["reason"], "spec-change");
  ASSERT_EQ(QueryAs("acme").exit_code, 0);
  // Contributed again for v2, it is accepted.
  ASSERT_EQ(
      Prepare("purchases", P("purchases.csv"), "keys/acme.key", "pur2.crpkg", "v2.yaml").exit_code,
      0);
  Ok("--room " + Q(P("room")) + " ingest " + Q(P("pur2.crpkg")));

  // The history is in status and in the audit log, which still verifies.
  json s = Status();
  EXPECT_EQ(s["version"], 2);
  ASSERT_EQ(s["versions"].size(), 2u);
  EXPECT_EQ(s["versions"][0]["parties"], json::array({"acme", "newsco", "agency"}));
  EXPECT_EQ(s["versions"][1]["parties"], json::array({"acme", "newsco"}));
  json update = LastEvent("room.update");
  EXPECT_EQ(update["details"]["version"], 2);
  EXPECT_EQ(update["details"]["parties_removed"], json::array({"agency"}));
  Ok("audit verify --room " + Q(P("room")));
  auto table = Ok("status --room " + Q(P("room"))).out;
  EXPECT_NE(table.find("version        2"), std::string::npos) << table;
  // v1 again, with its old (still valid) signatures, would bring agency back: refused.
  ExpectRefused(Run("room activate --room " + Q(P("room")) + " --spec " + Q(P("v1.yaml")) +
                    " --sig " + Q(P("v1.yaml.acme.sig")) + " " + Q(P("v1.yaml.newsco.sig")) + " " +
                    Q(P("v1.yaml.agency.sig"))),
                3, "SPEC_MISMATCH");
  ExpectRefused(QueryAs("agency"), 5, "NOT_AUTHORIZED");
}

TEST_F(GovernE2e, AVersionChangeIsRefusedWithoutEverySignatureOrWithOldBytes) {
  SetUpVersion1();
  SpecOptions v2;
  v2.description = "Governed measurement v2";
  v2.with_agency = false;
  const std::string only_acme = SignedSpec("v2.yaml", v2, {"acme"});
  const auto before = Snapshot(P("room"));
  auto missing = Run("room activate --room " + Q(P("room")) + " --spec " + Q(P("v2.yaml")) +
                     " --sig" + only_acme);
  ExpectRefused(missing, 5, "SIGNATURE_MISSING");
  // v1's signatures over v1's bytes: re-activating an old version is refused.
  auto old = Run("room activate --room " + Q(P("room")) + " --spec " + Q(P("v1.yaml")) + " --sig " +
                 Q(P("v1.yaml.acme.sig")) + " " + Q(P("v1.yaml.newsco.sig")) + " " +
                 Q(P("v1.yaml.agency.sig")));
  ExpectRefused(old, 3, "ROOM_EXISTS");
  // Another region in the new version is refused.
  SpecOptions us = v2;
  us.region = "us";
  const std::string us_sigs = SignedSpec("v2us.yaml", us, {"acme", "newsco"});
  ExpectRefused(Run("room activate --room " + Q(P("room")) + " --spec " + Q(P("v2us.yaml")) +
                    " --sig" + us_sigs),
                3, "REGION_MISMATCH");
  auto after = Snapshot(P("room"));
  for (const auto& [rel, bytes] : before) {
    if (rel != "audit.log") EXPECT_EQ(after[rel], bytes) << rel;
  }
  EXPECT_EQ(Status()["version"], 1);
  EXPECT_EQ(LastEvent("room.update.refused")["details"]["code"], "REGION_MISMATCH");
}

TEST_F(GovernE2e, AReplacedPartyKeyLosesAccessAndTheNewOneWorks) {
  SetUpVersion1();
  ASSERT_EQ(QueryAs("acme").exit_code, 0);
  // newsco rotates its key: version 2 names newsco-2.pub, signed with it.
  Ok("keygen --name newsco-2 --out " + Q(P("keys")));
  SpecOptions v2;
  v2.description = "Governed measurement v2 with a new key for newsco";
  v2.newsco_key = "keys/newsco-2.pub";
  const std::string sigs = SignedSpec("v2.yaml", v2, {"acme", "newsco-2", "agency"});
  json change = json::parse(Ok("--format json room activate --room " + Q(P("room")) + " --spec " +
                               Q(P("v2.yaml")) + " --sig" + sigs)
                                .out);
  EXPECT_EQ(change["keys_replaced"], json::array({"newsco"}));
  EXPECT_EQ(change["datasets_kept"], json::array({"impressions", "purchases"}));
  ExpectRefused(Run("results list --room " + Q(P("room")) + " --key " + Q(P("keys/newsco.key"))), 5,
                "NOT_AUTHORIZED");
  Ok("results list --room " + Q(P("room")) + " --key " + Q(P("keys/newsco-2.key")));
  // A package signed with the old key, for the new spec, is refused too.
  auto old_key =
      Prepare("impressions", P("impressions.csv"), "keys/newsco.key", "imp2.crpkg", "v2.yaml");
  if (old_key.exit_code == 0) {
    auto r = Run("--room " + Q(P("room")) + " ingest " + Q(P("imp2.crpkg")));
    EXPECT_NE(r.exit_code, 0);
  }
  ASSERT_EQ(
      Prepare("impressions", P("impressions.csv"), "keys/newsco-2.key", "imp2b.crpkg", "v2.yaml")
          .exit_code,
      0);
  Ok("--room " + Q(P("room")) + " ingest " + Q(P("imp2b.crpkg")));
}

TEST_F(GovernE2e, ARemovedPartysSignedRequestIsRefusedByTheServerAfterTheNewVersion) {
  SetUpVersion1();
  ASSERT_TRUE(std::filesystem::create_directories(P("tls")));
  TlsFiles tls = MakeTlsFiles(P("tls"));
  auto start = [&]() {
    auto s = demo::ServeProcess::Start({.binary = Bin(),
                                        .room = P("room"),
                                        .tls = {tls.ca_cert, tls.server_cert, tls.server_key},
                                        .log_path = P("serve.log")});
    EXPECT_TRUE(s) << (s ? "" : s.error().message) << "\n" << Slurp(P("serve.log"));
    return s ? std::optional<demo::ServeProcess>(std::move(*s)) : std::nullopt;
  };
  auto at_server = [&](const demo::ServeProcess& s, const std::string& party) {
    return "--server " + s.url() + " --tls-ca " + Q(tls.ca_cert) + " --key " +
           Q(P("keys/" + party + ".key")) + " ";
  };
  {
    auto server = start();
    ASSERT_TRUE(server);
    Ok(at_server(*server, "agency") + "results list");
    // The server holds the room's lock for its life: the new version is
    // activated while it is stopped, and the restarted server serves it.
    EXPECT_TRUE(server->Stop());
  }
  ActivateVersion2();
  auto server = start();
  ASSERT_TRUE(server);
  auto r = Run(at_server(*server, "agency") + "results list");
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_EQ(ErrorCodeOf(r), "AUTH_UNKNOWN_PARTY") << r.err;
  auto q = Run(at_server(*server, "agency") + "query --sql " + Q(kImpressionsSql));
  EXPECT_EQ(q.exit_code, 5) << q.err;
  Ok(at_server(*server, "acme") + "results list");
  json s = json::parse(Ok(at_server(*server, "acme") + "--format json status").out);
  EXPECT_EQ(s["version"], 2);
  EXPECT_EQ(s["room_region"], "eu");
  EXPECT_EQ(s["versions"].size(), 2u);
  EXPECT_TRUE(server->Stop());
}

TEST_F(GovernE2e, ATamperedCutDeletedOrRolledBackHistoryFileIsExit6) {
  SetUpVersion1();
  const std::string v1_history = Slurp(P("room/history.json"));
  ActivateVersion2();
  const std::string history = Slurp(P("room/history.json"));
  ASSERT_NE(history, v1_history);
  auto expect_tampered = [&](const std::string& what) {
    for (const std::string cmd : {"status --room ", "datasets --room "}) {
      auto r = Run(cmd + Q(P("room")));
      EXPECT_EQ(r.exit_code, 6) << what << ": " << cmd << r.err;
      EXPECT_EQ(ErrorCodeOf(r), "TAMPERED") << what << ": " << r.err;
    }
    ExpectRefused(QueryAs("acme"), 6, "TAMPERED");
  };
  std::string flipped = history;
  flipped[flipped.size() / 2] ^= 0x01;
  Spit(P("room/history.json"), flipped);
  expect_tampered("a flipped byte");
  Spit(P("room/history.json"), history.substr(0, history.size() - 20));
  expect_tampered("truncated");
  Spit(P("room/history.json"), "");
  expect_tampered("emptied");
  std::filesystem::remove(P("room/history.json"));
  expect_tampered("deleted");
  Spit(P("room/history.json"), v1_history);
  expect_tampered("the version 1 copy put back");
  Spit(P("room/history.json"), history);
  Ok("status --room " + Q(P("room")));
  Ok("audit verify --room " + Q(P("room")));
}

// The whole metadata of version 1 (state.json, history.json, spec.yaml,
// spec-keys.json, each validly sealed) put back after version 2 removed a
// party would bring the party back. The audit log's last version record says
// version 2: the room is refused with exit 6 and the party stays out.
TEST_F(GovernE2e, TheWholeMetadataOfAnEarlierVersionPutBackIsExit6) {
  SetUpVersion1();
  const std::vector<std::string> files = {"state.json", "history.json", "spec.yaml",
                                          "spec-keys.json"};
  std::map<std::string, std::string> v1;
  for (const auto& f : files) v1[f] = Slurp(P("room/" + f));
  ActivateVersion2();
  ExpectRefused(QueryAs("agency"), 5, "NOT_AUTHORIZED");
  std::map<std::string, std::string> v2;
  for (const auto& f : files) v2[f] = Slurp(P("room/" + f));
  for (const auto& f : files) Spit(P("room/" + f), v1[f]);
  const auto before = Snapshot(P("room"));
  for (const std::string cmd : {"status --room ", "datasets --room "}) {
    auto r = Run(cmd + Q(P("room")));
    EXPECT_EQ(r.exit_code, 6) << cmd << r.err;
    EXPECT_EQ(ErrorCodeOf(r), "TAMPERED") << r.err;
    EXPECT_NE(r.err.find("version 1"), std::string::npos) << r.err;
  }
  ExpectRefused(QueryAs("agency"), 6, "TAMPERED");
  ExpectRefused(QueryAs("acme"), 6, "TAMPERED");
  EXPECT_EQ(Snapshot(P("room")), before);  // refused before anything is written
  for (const auto& f : files) Spit(P("room/" + f), v2[f]);
  Ok("status --room " + Q(P("room")));
  Ok("audit verify --room " + Q(P("room")));
  ExpectRefused(QueryAs("agency"), 5, "NOT_AUTHORIZED");
}

// A version change whose audit record a crash cut off (state.json, its commit
// point, written; room.update not): the room is one version ahead of its log,
// which only the room's own update can leave. The next read-write open
// records it (room.update.recovered) and serves the new version.
TEST_F(GovernE2e, AVersionChangeWhoseRecordACrashCutOffIsRecordedAtTheNextOpen) {
  SetUpVersion1();
  ActivateVersion2();
  std::string log = Slurp(P("room/audit.log"));
  ASSERT_EQ(log.back(), '\n');
  const size_t last = log.rfind('\n', log.size() - 2);
  ASSERT_NE(log.find("\"room.update\"", last), std::string::npos) << "the last entry is the update";
  Spit(P("room/audit.log"), log.substr(0, last + 1));
  ExpectRefused(QueryAs("agency"), 5, "NOT_AUTHORIZED");  // a read-write open: records it
  EXPECT_EQ(LastEvent("room.update.recovered")["details"]["version"], 2);
  EXPECT_EQ(Status()["version"], 2);
  Ok("audit verify --room " + Q(P("room")));
}

TEST_F(GovernE2e, ARotatedRoomKeyKeepsTheLogVerifiableAndTakesOnlyNewPackages) {
  SetUpVersion1();
  auto first = QueryAs("acme");
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const std::string result_id = json::parse(first.out)["result_id"];
  // A package prepared for the room key about to be replaced, and a backup under it.
  Spit(P("old-room.pub"), Slurp(P("room/room.pub")));
  ASSERT_EQ(Prepare("impressions", P("impressions.csv"), "keys/newsco.key", "imp-old.crpkg",
                    "v1.yaml", "old-room.pub")
                .exit_code,
            0);
  Ok("room backup --room " + Q(P("room")) + " --out " + Q(P("before.bak")));
  const json verified_before =
      json::parse(Ok("--format json audit verify --room " + Q(P("room"))).out);
  const std::string old_store = Slurp(P("room/keystore.json"));

  json rotated = json::parse(Ok("--format json room rotate-key --room " + Q(P("room"))).out);
  EXPECT_NE(rotated["fingerprint"], rotated["previous_fingerprint"]);
  EXPECT_NE(Slurp(P("room/room.pub")), Slurp(P("old-room.pub")));
  EXPECT_NE(Slurp(P("room/keystore.json")), old_store);
  for (const auto& f : std::filesystem::directory_iterator(dir_.path())) {
    EXPECT_EQ(f.path().filename().string().find("room.rotate-"), std::string::npos) << f.path();
  }
  // The whole log verifies under the new room.pub: one entry more, the
  // rotation signed by the old key naming the new one.
  json verified = json::parse(Ok("--format json audit verify --room " + Q(P("room"))).out);
  EXPECT_EQ(verified["entries"].get<int>(), verified_before["entries"].get<int>() + 1);
  json rotation = LastEvent("room.rotate-key");
  ASSERT_TRUE(rotation.is_object());
  std::string pub_text = Slurp(P("room/room.pub"));
  while (!pub_text.empty() && pub_text.back() == '\n') pub_text.pop_back();
  EXPECT_EQ(rotation["details"]["new_room_key"], pub_text);
  EXPECT_EQ(rotation["details"]["data_keys_rewrapped"], 2);
  // Data, results and status still work under the new key.
  ASSERT_EQ(QueryAs("acme").exit_code, 0);
  Ok("results get --room " + Q(P("room")) + " --key " + Q(P("keys/agency.key")) + " --id " +
     result_id);
  EXPECT_EQ(Status()["room_key_fingerprint"], rotated["fingerprint"]);
  // A package sealed to the old room.pub is refused; one for the new is taken.
  ExpectRefused(Run("--room " + Q(P("room")) + " ingest " + Q(P("imp-old.crpkg"))), 5,
                "KEY_INVALID");
  ASSERT_EQ(
      Prepare("impressions", P("impressions.csv"), "keys/newsco.key", "imp-new.crpkg", "v1.yaml")
          .exit_code,
      0);
  Ok("--room " + Q(P("room")) + " ingest " + Q(P("imp-new.crpkg")));
  Ok("audit verify --room " + Q(P("room")));
  // A backup made under the old key cannot replace the rotated room.
  ExpectRefused(Run("room restore --room " + Q(P("room")) + " --from " + Q(P("before.bak"))), 3,
                "ROOM_EXISTS");
  // Rotating again chains on: the log still verifies end to end.
  Ok("room rotate-key --room " + Q(P("room")));
  Ok("audit verify --room " + Q(P("room")));
  ASSERT_EQ(QueryAs("acme").exit_code, 0);
}

TEST_F(GovernE2e, ARotatedRoomKeyCarriesTheBudgetLedgerAndItsStoredAnswers) {
  demo::CampaignSpecOptions o;
  o.dp = true;
  // The fixture made the keys: the campaign spec with a budget, activated.
  Spit(P("spec.yaml"), demo::CampaignSpec(o));
  Ok("room init --region eu --room " + Q(P("room")) + " --spec " + Q(P("spec.yaml")));
  for (const char* party : {"acme", "newsco"}) {
    Ok("spec sign --spec " + Q(P("spec.yaml")) + " --key " + Q(P(std::string("keys/") + party + ".key")));
  }
  Ok("room activate --room " + Q(P("room")) + " --sig " + Q(P("spec.yaml.acme.sig")) + " " +
     Q(P("spec.yaml.newsco.sig")));
  ASSERT_EQ(Prepare("impressions", P("impressions.csv"), "keys/newsco.key", "imp.crpkg").exit_code,
            0);
  Ok("--room " + Q(P("room")) + " ingest " + Q(P("imp.crpkg")));
  const std::string dp_query = "--room " + Q(P("room")) + " --key " + Q(P("keys/acme.key")) +
                               " --format json query --epsilon 0.5 --sql " + Q(kImpressionsSql);
  json paid = json::parse(Ok(dp_query).out);
  EXPECT_EQ(paid["epsilon_spent"], 0.5);
  const std::string budget_before = Ok("--format json budget --room " + Q(P("room"))).out;
  Ok("room rotate-key --room " + Q(P("room")));
  // The same spent budget, and the stored answer of the same query, free.
  EXPECT_EQ(Ok("--format json budget --room " + Q(P("room"))).out, budget_before);
  json again = json::parse(Ok(dp_query).out);
  EXPECT_EQ(again["epsilon_spent"], 0);
  EXPECT_EQ(again["rows"], paid["rows"]);
  Ok("audit verify --room " + Q(P("room")));
}

}  // namespace
}  // namespace cr::testing
