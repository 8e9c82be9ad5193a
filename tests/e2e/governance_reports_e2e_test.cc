// Issue 15, capabilities 5-7 end to end through the binary: erasure requests
// (`forget`), the incident report (`audit report`) and the buyer's report
// (`report`), each with the attack or the exact count it must get right.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "client/client.h"
#include "crypto/crypto.h"
#include "demo/generator.h"
#include "demo/serve_process.h"
#include "e2e_fixture.h"
#include "engine/engine.h"
#include "ingest/forget.h"
#include "ingest/pseudonym.h"
#include "room/room.h"

namespace cr::testing {
namespace {

using nlohmann::json;

// 2026-12-01 is a Tuesday: 10:00 UTC is working hours.
constexpr long long kTuesday10 = 1796119200;

class GovernanceReportsE2e : public E2eTest {
 protected:
  // Every command runs at a pinned time unless it says otherwise, so the
  // off-hours count does not depend on when the suite runs.
  void SetUp() override {
    ASSERT_TRUE(crypto::Init());
    ::setenv("CLEANROOM_NOW", std::to_string(kTuesday10).c_str(), 1);
  }
  void TearDown() override { ::unsetenv("CLEANROOM_NOW"); }

  // Both datasets ingested (at kTuesday10 unless the test unpinned the clock).
  void SetUpData() {
    SetUpRoom();
    Generate(3000, 600);
    ASSERT_EQ(
        Prepare("impressions", P("impressions.csv"), "keys/newsco.key", "imp.crpkg").exit_code, 0);
    ASSERT_EQ(Prepare("purchases", P("purchases.csv"), "keys/acme.key", "pur.crpkg").exit_code, 0);
    ASSERT_EQ(Ingest(P("imp.crpkg")).exit_code, 0);
    ASSERT_EQ(Ingest(P("pur.crpkg")).exit_code, 0);
  }

  static std::string At(long long t) { return "CLEANROOM_NOW=" + std::to_string(t); }

  // Rows of `email`'s unit in the stored impressions, read through the room's
  // own decryption and the pseudonymiser prepare uses (and all rows, and the
  // distinct people).
  int64_t StoredRows(const std::string& email, int64_t* total = nullptr,
                     int64_t* people = nullptr) {
    auto room = room::Room::Open(P("room"), room::OpenMode::kReadOnly);
    EXPECT_TRUE(room) << room.error().message;
    if (!room) return -1;
    auto plain = room->Decrypt("impressions");
    EXPECT_TRUE(plain);
    auto db = engine::Database::Open();
    EXPECT_TRUE(db);
    auto secret = crypto::LoadSharedSecret(P("shared.secret"));
    EXPECT_TRUE(secret);
    auto key = ingest::PseudonymKey(*secret, room->spec().collaboration, "email");
    EXPECT_TRUE(db->RegisterUuidFunction(
        "p", std::make_shared<ingest::Pseudonymizer>(key, spec::Normalize::kEmail)));
    const std::string src = "read_parquet(" + engine::QuoteLiteral(plain->path()) + ")";
    if (total) *total = db->Query("SELECT count(*) FROM " + src)->ScalarInt();
    if (people) *people = db->Query("SELECT count(DISTINCT email) FROM " + src)->ScalarInt();
    return db
        ->Query("SELECT count(*) FROM " + src + " WHERE email = p(" + engine::QuoteLiteral(email) +
                ")")
        ->ScalarInt();
  }

  // An email of the generator's that has rows in the stored impressions.
  std::string PresentEmail() {
    for (int64_t i = 0; i < 50; ++i) {
      std::string e = demo::PersonEmail(i);
      if (StoredRows(e) > 0) return e;
    }
    ADD_FAILURE() << "no generated person has impressions";
    return "";
  }

  RunResult Forget(const std::string& id, const std::string& key = "keys/newsco.key") {
    return Run("forget --format json --room " + Q(P("room")) + " --spec " + Q(P("spec.yaml")) +
                   " --dataset impressions --id " + Q(id) + " --key " + Q(P(key)) + " --secret " +
                   Q(P("shared.secret")),
               At(kTuesday10 + 60));
  }

  int64_t DistinctPeople() {
    auto r = Run("query --format json --room " + Q(P("room")) + " --key " + Q(P("keys/acme.key")) +
                     " --sql " + Q("SELECT COUNT(DISTINCT email) AS people FROM impressions"),
                 At(kTuesday10 + 120));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto j = json::parse(r.out, nullptr, false);
    if (!j.is_object() || j["rows"].empty()) return -1;
    const auto& cell = j["rows"][0][0];
    return cell.is_number() ? cell.get<int64_t>() : std::stoll(cell.get<std::string>());
  }

  std::vector<json> AuditEntries() {
    std::vector<json> out;
    std::ifstream in(P("room/audit.log"));
    for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
    return out;
  }
};

TEST_F(GovernanceReportsE2e, ForgettingThenAskingAgainIsWithheld) {
  // The answer before the erasure minus the answer after it would be the
  // forgotten person's own contribution: the room withholds the second.
  SetUpData();
  const int64_t people_before = DistinctPeople();
  ASSERT_GT(people_before, 0);
  ASSERT_EQ(Forget(PresentEmail()).exit_code, 0);
  auto r = Run("query --format json --room " + Q(P("room")) + " --key " + Q(P("keys/acme.key")) +
                   " --sql " + Q("SELECT COUNT(DISTINCT email) AS people FROM impressions"),
               At(kTuesday10 + 120));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_TRUE(j["rows"].empty()) << j.dump();
  EXPECT_EQ(j["withheld_rows"], 1) << j.dump();
}

TEST_F(GovernanceReportsE2e, ForgottenUnitIsAbsentFromLaterAnswersAndStoredData) {
  SetUpData();
  const std::string email = PresentEmail();
  // People counted from the stored data, not asked: an answer before and one
  // after differ by the forgotten person, and the difference check withholds
  // the second (ForgettingThenAskingAgainIsWithheld).
  int64_t total_before = 0, people_before = 0;
  const int64_t unit_rows = StoredRows(email, &total_before, &people_before);
  ASSERT_GT(unit_rows, 0);
  ASSERT_GT(people_before, 0);
  auto room_before = room::Room::Open(P("room"), room::OpenMode::kReadOnly);
  ASSERT_TRUE(room_before);
  const std::string old_id = room_before->datasets().at("impressions").package_id;
  const std::string old_ingested = room_before->datasets().at("impressions").ingested_at;

  // Typed as a person would, not as stored: the request normalises as prepare does.
  std::string messy = "  " + email + " ";
  for (auto& c : messy) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto r = Forget(messy);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto answer = json::parse(r.out);
  EXPECT_EQ(answer["dataset"], "impressions");
  EXPECT_EQ(answer["forgotten"], true);

  int64_t total_after = 0;
  EXPECT_EQ(StoredRows(email, &total_after), 0);
  EXPECT_EQ(total_after, total_before - unit_rows);
  EXPECT_EQ(DistinctPeople(), people_before - 1);
  // The old version is crypto-shredded: its key and ciphertext are gone.
  EXPECT_FALSE(std::filesystem::exists(P("room/keys/impressions-" + old_id + ".key")));
  EXPECT_FALSE(std::filesystem::exists(P("room/data/impressions-" + old_id + ".crdata")));
  auto room_after = room::Room::Open(P("room"), room::OpenMode::kReadOnly);
  ASSERT_TRUE(room_after);
  const auto& stored = room_after->datasets().at("impressions");
  EXPECT_EQ(stored.package_id, answer["version"].get<std::string>());
  EXPECT_EQ(stored.ingested_at, old_ingested);  // retention still counts from the contribution

  // Audited without the value or the pseudonym.
  json forget;
  for (const auto& e : AuditEntries()) {
    if (e["event"] == "dataset.forget") forget = e;
  }
  ASSERT_TRUE(forget.is_object());
  EXPECT_EQ(forget["actor"], "newsco");
  EXPECT_EQ(forget["details"]["previous_package_id"], old_id);
  EXPECT_EQ(forget["details"]["request_id"], answer["request_id"]);
  EXPECT_EQ(forget["details"]["unit_tag"].get<std::string>().size(), 32u);
  auto secret = crypto::LoadSharedSecret(P("shared.secret"));
  ASSERT_TRUE(secret);
  auto spec = spec::Load(P("spec.yaml"));
  ASSERT_TRUE(spec);
  auto unit = ingest::UnitPseudonym(*spec, *spec->FindDataset("impressions"), *secret, email);
  ASSERT_TRUE(unit);
  const std::string log = Slurp(P("room/audit.log"));
  EXPECT_EQ(log.find(*unit), std::string::npos);
  EXPECT_EQ(log.find(email), std::string::npos);
  EXPECT_EQ(Ok("audit verify --room " + Q(P("room"))).exit_code, 0);
}

// An id that is not in the data gets the same answer and the same kind of
// record as one that is: the request is no oracle for presence.
TEST_F(GovernanceReportsE2e, AbsentIdGetsTheSameAnswerAndIsAudited) {
  SetUpData();
  int64_t total_before = 0;
  ASSERT_EQ(StoredRows("nobody@nowhere.example", &total_before), 0);
  auto r = Forget("nobody@nowhere.example");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto answer = json::parse(r.out);
  std::set<std::string> keys;
  for (const auto& [k, v] : answer.items()) keys.insert(k);
  EXPECT_EQ(keys, (std::set<std::string>{"dataset", "forgotten", "request_id", "version"}));
  int64_t total_after = 0;
  EXPECT_EQ(StoredRows("nobody@nowhere.example", &total_after), 0);
  EXPECT_EQ(total_after, total_before);
  auto entries = AuditEntries();
  EXPECT_EQ(entries.back()["event"], "dataset.forget");
  std::set<std::string> detail_keys;
  for (const auto& [k, v] : entries.back()["details"].items()) detail_keys.insert(k);
  EXPECT_FALSE(detail_keys.count("rows_removed"));
  EXPECT_FALSE(detail_keys.count("unit"));
}

TEST_F(GovernanceReportsE2e, NonOwnersForgetIsRefusedAndChangesNothing) {
  SetUpData();
  const std::string email = PresentEmail();
  const auto before = Snapshot(P("room"), "audit.log");
  // acme does not own impressions: refused on its side (exit 5), room untouched.
  auto r = Forget(email, "keys/acme.key");
  ExpectRefused(r, 5, "NOT_AUTHORIZED");
  EXPECT_EQ(Snapshot(P("room"), "audit.log"), before);

  // A request acme crafts and signs itself reaches the room's own check.
  FixedClock clock(kTuesday10 + 60);
  std::optional<room::Room> room;
  {
    auto opened = room::Room::Open(P("room"), room::OpenOptions{.clock = &clock});
    ASSERT_TRUE(opened);
    room.emplace(std::move(*opened));
  }
  auto acme = crypto::Identity::Load(P("keys/acme.key"));
  ASSERT_TRUE(acme);
  json req = {{"kind", ingest::kForgetKind},
              {"request_id", crypto::RandomId()},
              {"collaboration", room->spec().collaboration},
              {"spec_hash", room->spec().hash},
              {"dataset", "impressions"},
              {"column", "email"},
              {"unit", std::string(32, 'a')},
              {"signer", acme->pub().ToText()},
              {"created_at", "2026-12-01T10:00:00Z"}};
  req["signature"] = crypto::Base64Encode(acme->Sign(req.dump()));
  auto refused = ingest::Forget(*room, req);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::WRONG_SIGNER);
  EXPECT_EQ(ExitCode(refused.error().code), 5);
  // A request whose signature does not match its bytes.
  json forged = req;
  forged["signer"] = crypto::Identity::Load(P("keys/newsco.key"))->pub().ToText();
  auto bad = ingest::Forget(*room, forged);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::SIGNATURE_INVALID);
  room.reset();  // releases the lock
  EXPECT_EQ(Snapshot(P("room"), "audit.log"), before);
  EXPECT_GT(StoredRows(email), 0);
  auto entries = AuditEntries();
  EXPECT_EQ(entries[entries.size() - 2]["event"], "forget.refused");
  EXPECT_EQ(entries[entries.size() - 2]["details"]["code"], "WRONG_SIGNER");
  EXPECT_EQ(entries.back()["details"]["code"], "SIGNATURE_INVALID");
}

TEST_F(GovernanceReportsE2e, ReplayedErasureRequestIsRefused) {
  SetUpData();
  auto req = ingest::MakeForgetRequest({P("spec.yaml"), "impressions", demo::PersonEmail(3),
                                        P("keys/newsco.key"), P("shared.secret")});
  ASSERT_TRUE(req) << req.error().message;
  FixedClock clock(kTuesday10 + 60);
  auto room = room::Room::Open(P("room"), room::OpenOptions{.clock = &clock});
  ASSERT_TRUE(room);
  ASSERT_TRUE(ingest::Forget(*room, *req));
  const std::string version = room->datasets().at("impressions").package_id;
  auto again = ingest::Forget(*room, *req);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::AUTH_REPLAYED);
  EXPECT_EQ(room->datasets().at("impressions").package_id, version);
}

// The same request over the server: the route is signed, and the answer is
// the local one.
TEST_F(GovernanceReportsE2e, ForgetOverTheServer) {
  // The server checks each request's signing time against its clock: real time here.
  ::unsetenv("CLEANROOM_NOW");
  SetUpData();
  const std::string email = PresentEmail();
  std::filesystem::create_directories(P("tls"));
  auto tls = demo::MakeTlsFiles(P("tls"));
  ASSERT_TRUE(tls) << tls.error().message;
  int64_t total_before = 0;
  StoredRows(email, &total_before);
  {
    auto s = demo::ServeProcess::Start(
        {.binary = Bin(), .room = P("room"), .tls = *tls, .log_path = P("serve.log")});
    ASSERT_TRUE(s) << s.error().message << Slurp(P("serve.log"));
    const std::string common = " --server " + s->url() + " --tls-ca " + Q(tls->ca_cert) +
                               " --spec " + Q(P("spec.yaml")) + " --dataset impressions --secret " +
                               Q(P("shared.secret")) + " --id " + Q(email);
    ExpectRefused(Run("forget --key " + Q(P("keys/acme.key")) + common), 5, "NOT_AUTHORIZED");
    auto r = Run("forget --format json --key " + Q(P("keys/newsco.key")) + common);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(json::parse(r.out)["forgotten"], true);

    // newsco's signed request relayed by acme, and then replayed by newsco.
    auto req = ingest::MakeForgetRequest({P("spec.yaml"), "impressions", demo::PersonEmail(7),
                                          P("keys/newsco.key"), P("shared.secret")});
    ASSERT_TRUE(req);
    auto acme = client::Client::Connect(
        {.url = s->url(), .tls_ca = tls->ca_cert, .key_path = P("keys/acme.key")});
    ASSERT_TRUE(acme) << acme.error().message;
    auto relayed = acme->PostJson("/v1/forget", *req);
    ASSERT_FALSE(relayed);
    EXPECT_EQ(relayed.error().code, ErrorCode::WRONG_SIGNER);
    auto newsco = client::Client::Connect(
        {.url = s->url(), .tls_ca = tls->ca_cert, .key_path = P("keys/newsco.key")});
    ASSERT_TRUE(newsco);
    ASSERT_TRUE(newsco->PostJson("/v1/forget", *req));
    auto replayed = newsco->PostJson("/v1/forget", *req);
    ASSERT_FALSE(replayed);
    EXPECT_EQ(replayed.error().code, ErrorCode::AUTH_REPLAYED);
    ASSERT_TRUE(s->Stop());
  }
  int64_t total_after = 0;
  EXPECT_EQ(StoredRows(email, &total_after), 0);
  EXPECT_LT(total_after, total_before);
}

// A scripted sequence, counted exactly: 3 queries run and 5 refused by acme
// (4 by the checker, a template that does not exist) inside ten minutes (a
// probing burst), one refused for newsco (no query
// ability), one action on a Saturday night, and an event kind this build does
// not know (counted under "other").
TEST_F(GovernanceReportsE2e, AuditReportCountsAScriptedSequenceExactly) {
  SetUpData();
  const std::string room = " --room " + Q(P("room"));
  auto query = [&](const std::string& key, const std::string& sql, long long t) {
    return Run("query" + room + " --key " + Q(P(key)) + " --sql " + Q(sql), At(t));
  };
  const std::string ok_sql =
      "SELECT campaign, COUNT(DISTINCT email) AS n FROM impressions GROUP BY campaign";
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(query("keys/acme.key", ok_sql, kTuesday10 + 300 + i).exit_code, 0);
  for (int i = 0; i < 4; ++i) {
    ExpectRefused(
        query("keys/acme.key", "SELECT email FROM impressions", kTuesday10 + 400 + 10 * i), 3,
        "QUERY_REFUSED");
  }
  ExpectRefused(Run("run" + room + " --key " + Q(P("keys/acme.key")) + " --template nosuch",
                    At(kTuesday10 + 450)),
                7, "BAD_INPUT");
  ExpectRefused(query("keys/newsco.key", ok_sql, kTuesday10 + 500), 5, "NOT_AUTHORIZED");
  // Saturday 2026-12-05 03:00 UTC.
  const long long saturday3 = 1796439600;
  ExpectRefused(query("keys/acme.key", "SELECT email FROM impressions", saturday3), 3,
                "QUERY_REFUSED");
  {
    FixedClock clock(kTuesday10 + 700);
    auto r = room::Room::Open(P("room"), room::OpenOptions{.clock = &clock});
    ASSERT_TRUE(r);
    ASSERT_TRUE(r->audit().Append("pool.contribution", "acme", {{"dataset", "x"}}));
  }

  auto rep = Run("audit report --format json" + room + " --html " + Q(P("incident.html")));
  ASSERT_EQ(rep.exit_code, 0) << rep.err;
  auto j = json::parse(rep.out);
  std::map<std::string, json> by;
  for (const auto& p : j["parties"]) by[p["actor"].get<std::string>()] = p;
  ASSERT_TRUE(by.count("acme") && by.count("newsco"));
  EXPECT_EQ(by["acme"]["queries_run"], 3);
  EXPECT_EQ(by["acme"]["queries_refused"], 6);
  EXPECT_EQ(by["acme"]["refused_by_code"], (json{{"BAD_INPUT", 1}, {"QUERY_REFUSED", 5}}));
  EXPECT_EQ(by["acme"]["other"], (json{{"pool.contribution", 1}}));
  EXPECT_EQ(by["acme"]["epsilon_spent"], 0.0);
  EXPECT_EQ(by["newsco"]["queries_run"], 0);
  EXPECT_EQ(by["newsco"]["queries_refused"], 1);
  EXPECT_EQ(by["newsco"]["refused_by_code"], (json{{"NOT_AUTHORIZED", 1}}));
  EXPECT_EQ(by["newsco"]["ingests"], 1);
  EXPECT_EQ(by["acme"]["ingests"], 1);
  EXPECT_EQ(by["operator"]["version_changes"], 2);  // room.init, room.activate
  int probing = 0, off_hours = 0;
  for (const auto& f : j["flags"]) {
    if (f["kind"] == "probing") {
      ++probing;
      EXPECT_EQ(f["actor"], "acme");
      EXPECT_EQ(f["count"], 5);  // the Saturday refusal is days later
    }
    if (f["kind"] == "off_hours") {
      ++off_hours;
      EXPECT_EQ(f["actor"], "acme");
      EXPECT_EQ(f["count"], 1);
    }
  }
  EXPECT_EQ(probing, 1);
  EXPECT_EQ(off_hours, 1);

  // --since leaves out everything before it.
  auto since = Run("audit report --format json --since 2026-12-05" + room);
  ASSERT_EQ(since.exit_code, 0) << since.err;
  auto js = json::parse(since.out);
  std::map<std::string, json> by2;
  for (const auto& p : js["parties"]) by2[p["actor"].get<std::string>()] = p;
  EXPECT_EQ(by2["acme"]["queries_refused"], 1);
  EXPECT_EQ(by2["acme"]["queries_run"], 0);
  ExpectRefused(Run("audit report --since yesterday" + room), 2, "USAGE");
}

// Both pages render in a real browser, offline.
TEST_F(GovernanceReportsE2e, ReportPagesRenderInHeadlessChromium) {
  const std::string chromium = "/usr/bin/chromium";
  if (!std::filesystem::exists(chromium)) GTEST_SKIP() << "chromium is not installed";
  SetUpData();
  ASSERT_EQ(Forget(demo::PersonEmail(1)).exit_code, 0);
  auto buyer = Run("report --format json --room " + Q(P("room")) + " --html " + Q(P("buyer.html")));
  ASSERT_EQ(buyer.exit_code, 0) << buyer.err;
  auto bj = json::parse(buyer.out);
  ASSERT_EQ(bj["answers"].size(), 15u);
  EXPECT_EQ(bj["answers"][0]["id"], "inputs");
  EXPECT_EQ(bj["collaboration"], "acme-newsco-2026q4");
  ASSERT_EQ(
      Run("audit report --room " + Q(P("room")) + " --html " + Q(P("incident.html"))).exit_code, 0);
  for (const std::string page : {"buyer.html", "incident.html"}) {
    const std::string html = Slurp(P(page));
    EXPECT_EQ(html.find("http://"), std::string::npos) << page;
    EXPECT_EQ(html.find("https://"), std::string::npos) << page;
    EXPECT_EQ(html.find("<script"), std::string::npos) << page;
  }
  std::filesystem::create_directory(P("profile"));
  const std::string flags =
      " --headless --no-sandbox --disable-gpu --disable-background-networking "
      "--disable-component-update --disable-sync --no-first-run --user-data-dir=" +
      Q(P("profile")) + " --window-size=1000,1600 ";
  auto dom =
      RunShell("timeout 60 " + chromium + flags + "--dump-dom " + Q("file://" + P("buyer.html")));
  ASSERT_EQ(dom.exit_code, 0) << dom.err;
  size_t sections = 0;
  for (size_t p = dom.out.find("<section class=\"answer\""); p != std::string::npos;
       p = dom.out.find("<section class=\"answer\"", p + 1)) {
    ++sections;
  }
  EXPECT_EQ(sections, 15u);
  EXPECT_NE(dom.out.find("Dataset impressions from newsco"), std::string::npos);
  EXPECT_NE(dom.out.find("Erasure requests applied: 1"), std::string::npos);
  auto idom = RunShell("timeout 60 " + chromium + flags + "--dump-dom " +
                       Q("file://" + P("incident.html")));
  ASSERT_EQ(idom.exit_code, 0) << idom.err;
  EXPECT_NE(idom.out.find("<tr data-actor=\"newsco\">"), std::string::npos);
  EXPECT_NE(idom.out.find("Activity by party"), std::string::npos);
  for (const std::string page : {"buyer.html", "incident.html"}) {
    auto shot = RunShell("timeout 60 " + chromium + flags + "--screenshot=" + Q(P(page + ".png")) +
                         " " + Q("file://" + P(page)));
    ASSERT_EQ(shot.exit_code, 0) << shot.err;
    EXPECT_GT(std::filesystem::file_size(P(page + ".png")), 10000u) << page;
  }
}

}  // namespace
}  // namespace cr::testing
